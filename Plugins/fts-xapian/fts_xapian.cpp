// fts-xapian: a BM25 full-text retriever over Xapian 1.4, for the Orion plugin ABI v1.
//
// Build (standalone; needs Debian's libxapian-dev):
//   g++ -std=c++17 -O2 -shared -fPIC -Wall -Wextra -Wl,-z,defs -I<orion>/PluginSDK/ABI/include
//       Plugins/fts-xapian/*.cpp -o libfts-xapian.so -lxapian
// Files: this one (queries, searches, writes and the C ABI), terms.cpp (index terms and the
// configuration), store.cpp (opening and sharing databases); fts_xapian.hpp declares what they share.
//
// Configuration (JSON object, every key optional):
//   path     directory of an on-disk Xapian database (created if missing); without it the index
//            lives in memory (Xapian::InMemory) and its checkpoint is 0 after a restart.
//   k1, b    BM25 parameters (defaults 1.2 and 0.75).
//   stemmer  a Xapian stemmer language (default "english"); "none" disables stemming.
//   stopwords  "english" (default) or "none": words left out of queries (documents index every
//            word, so changing this needs no rebuild). A query made only of stopwords keeps them.
//
// Index layout: one Xapian document per (namespace, id).
//   Q<ns>\x1f<id>   unique term (replace_document key, so add is an upsert)
//   N<ns>           namespace term (boolean, wdf 0)
//   M<key>=<value>  one boolean term per metadata pair; `\`, `=` and `#` in the key are escaped
//                   with `\` so the encoding is unambiguous. A value that would make the term longer
//                   than Xapian's 245-byte limit is replaced by its FNV-1a 64-bit hash: M<key>#<hex>.
//   XQ / XN / XM    hashed forms of the above for namespaces or keys that are themselves too long.
//   text terms      TermGenerator output, STEM_SOME: unstemmed words and Z-prefixed stems.
//   value slot 0 and document data: the id, 8 bytes big-endian.
//   metadata "orion_checkpoint": the last checkpoint, decimal; clear() drops it with the documents.
//
// Concurrency: Xapian objects are not thread-safe. One std::shared_mutex per database: writes
// (add, remove, clear, checkpoint) and stats take it exclusively. On disk, searches take it shared
// and each uses its own read-only Xapian::Database from a pool (reopened after every commit); in
// memory there is only the one WritableDatabase, so searches take the lock exclusively too.
// Instances of one plugin image that name the same path share one open database (Xapian allows a
// single writer per database), so a hot reload with an unchanged path does not hit the lock.

#include "fts_xapian.hpp"

namespace {

using namespace fts_xapian;

/// English function words: they match nearly every document, carry almost no BM25 weight, and
/// cost the most postings to merge. Left out of queries, never out of the index.
const char *const kEnglishStopwords[] = {
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
};

/// Fresh per call: Xapian::Stem is reference counted without atomics, so it is never shared.
Xapian::Stem make_stemmer(const std::string &language) {
  return language.empty() ? Xapian::Stem() : Xapian::Stem(language);
}

Xapian::Document make_document(const orion_document &doc, const std::string &ns, Xapian::TermGenerator &generator) {
  if (doc.field_count > 0 && doc.fields == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "a document has field_count > 0 and no fields"};
  if (doc.metadata_count > 0 && doc.metadata == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "a document has metadata_count > 0 and no metadata"};
  Xapian::Document document;
  generator.set_document(document);
  for (size_t f = 0; f < doc.field_count; f++) {
    std::string text = copy(doc.fields[f].value, "a field value");
    generator.index_text_without_positions(text);
  }
  document.add_boolean_term(unique_term(ns, doc.id));
  document.add_boolean_term(namespace_term(ns));
  for (size_t m = 0; m < doc.metadata_count; m++) {
    document.add_boolean_term(metadata_term(copy(doc.metadata[m].key, "a metadata key"), copy(doc.metadata[m].value, "a metadata value")));
  }
  std::string id = encode_id(doc.id);
  document.add_value(0, id);
  document.set_data(id);
  return document;
}

uint64_t read_checkpoint(const Xapian::Database &db) {
  std::string text = db.get_metadata(kCheckpointKey);
  uint64_t value = 0;
  if (text.empty()) return 0;
  auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return result.ec == std::errc() ? value : 0;
}

/// The OR query for user text: the query is run through the same TermGenerator as documents, and
/// each word contributes the term documents are matched on (its Z-stem, or the word itself when
/// it is not stemmed). Query syntax has no meaning here: it is either a word or ignored.
Xapian::Query text_query(const Instance &self, const std::string &text, bool stop = true) {
  Xapian::Document scratch;
  Xapian::TermGenerator generator;
  Xapian::Stem stem = make_stemmer(self.stemmer);
  generator.set_stemmer(stem);
  generator.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
  if (stop && self.stopper) {
    generator.set_stopper(self.stopper.get());
    generator.set_stopper_strategy(Xapian::TermGenerator::STOP_ALL);
  }
  generator.set_document(scratch);
  generator.index_text_without_positions(text);
  std::vector<Xapian::Query> terms;
  for (auto it = scratch.termlist_begin(); it != scratch.termlist_end(); ++it) {
    std::string term = *it;
    if (term.empty()) continue;
    bool wanted = term[0] == 'Z' || self.stemmer.empty() || !generator_stems(term);
    if (wanted) terms.emplace_back(term, it.get_wdf());
  }
  // Only stopwords ("to be or not to be"): search them rather than nothing.
  if (terms.empty()) return stop && self.stopper ? text_query(self, text, false) : Xapian::Query();
  return Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end());
}

void run_search(const Instance &self, const Xapian::Database &db, const Xapian::Query &query, uint32_t limit,
                orion_search_out *out) {
  Xapian::Enquire enquire(db);
  enquire.set_query(query);
  enquire.set_weighting_scheme(Xapian::BM25Weight(self.k1, 0, 0, self.b, 0.5));
  Xapian::MSet mset = enquire.get_mset(0, limit);
  uint32_t n = 0;
  for (auto it = mset.begin(); it != mset.end() && n < limit; ++it) {
    int64_t id = 0;
    if (!decode_id(it.get_document().get_data(), &id)) throw PluginFailure{ORION_ERR_INTERNAL, "a document in the index has no id; clear and rebuild it"};
    orion_hit &hit = out->hits[n++];
    hit.id = id;
    hit.score = static_cast<float>(it.get_weight());
    hit.source = ORION_SOURCE_FTS;
    hit.detail_offset = 0;
    hit.detail_count = 0;
  }
  out->hit_count = n;
}

// ---------------------------------------------------------------------------------------------
// ABI functions
// ---------------------------------------------------------------------------------------------
orion_status fx_create(orion_host_ctx *ctx, orion_str config_text, void **out, orion_error *err) {
  if (out != nullptr) *out = nullptr;
  return guarded(err, "create", [&]() -> orion_status {
    if (out == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "create() needs an out pointer"};
    Config config = parse_config(config_text);
    if (!(config.k1 >= 0)) config_error("'k1' must be >= 0 (BM25 term-frequency saturation; default 1.2)");
    if (!(config.b >= 0 && config.b <= 1)) config_error("'b' must be between 0 and 1 (BM25 length normalisation; default 0.75)");
    if (config.stemmer.empty()) config_error("'stemmer' is empty; name a language such as english, or none");
    std::string language = config.stemmer == "none" ? std::string() : config.stemmer;
    if (!language.empty()) {
      try {
        Xapian::Stem check(language);
      } catch (const Xapian::InvalidArgumentError &) {
        config_error("unknown 'stemmer' '" + printable(config.stemmer) + "'; use one of: " + Xapian::Stem::get_available_languages() + ", or none");
      }
    }
    std::unique_ptr<Instance> self(new Instance{nullptr, ctx, config.k1, config.b, language, nullptr});
    if (config.stopwords == "english") {
      self->stopper = std::make_unique<Xapian::SimpleStopper>(std::begin(kEnglishStopwords), std::end(kEnglishStopwords));
    } else if (config.stopwords != "none") {
      config_error("unknown 'stopwords' '" + printable(config.stopwords) + "'; use english or none");
    }
    std::string description;
    self->store = open_store(config, &description);
    host_log(ctx, ORION_LOG_INFO, "fts-xapian: " + description);
    *out = self.release();
    return ORION_OK;
  });
}

void fx_destroy(void *raw) {
  if (raw == nullptr) return;
  Instance *self = static_cast<Instance *>(raw);
  try {
    release_store(std::move(self->store));
  } catch (...) {
    // Closing a database can throw (a failed final commit); there is nobody to tell here.
  }
  delete self;
}

orion_status fx_add(void *instance, const orion_document *docs, size_t count, orion_error *err) {
  return guarded(err, "add", [&]() -> orion_status {
    auto &self = *static_cast<Instance *>(instance);
    if (count == 0) return ORION_OK;
    if (docs == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "docs is NULL with a non-zero count"};
    // Build every document before taking the lock: indexing text is the expensive part.
    Xapian::TermGenerator generator;
    Xapian::Stem stem = make_stemmer(self.stemmer);
    generator.set_stemmer(stem);
    generator.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
    std::vector<std::pair<std::string, Xapian::Document>> built;
    built.reserve(count);
    for (size_t i = 0; i < count; i++) {
      std::string ns = copy(docs[i].ns, "a document namespace");
      built.emplace_back(unique_term(ns, docs[i].id), make_document(docs[i], ns, generator));
    }
    Store &store = *self.store;
    ExclusiveLock lock(store);
    auto write = [&] {
      for (auto &entry : built) store.db.replace_document(entry.first, entry.second);
    };
    if (store.on_disk()) {
      store.transaction(write);
    } else {
      write();
    }
    return ORION_OK;
  });
}

orion_status fx_remove(void *instance, orion_str ns_str, const int64_t *ids, size_t count, orion_error *err) {
  return guarded(err, "remove", [&]() -> orion_status {
    auto &self = *static_cast<Instance *>(instance);
    if (count == 0) return ORION_OK;
    if (ids == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "ids is NULL with a non-zero count"};
    std::string ns = copy(ns_str, "the namespace");
    Store &store = *self.store;
    ExclusiveLock lock(store);
    for (size_t i = 0; i < count; i++) store.db.delete_document(unique_term(ns, ids[i]));
    if (store.on_disk()) {
      store.db.commit();
      store.committed();
    }
    return ORION_OK;
  });
}

orion_status fx_search(void *instance, const orion_query *query, orion_search_out *out, orion_error *err) {
  if (out != nullptr) {
    out->hit_count = 0;
    out->detail_count = 0;
    out->flags = 0;
    out->degraded_reason[0] = 0;
  }
  return guarded(err, "search", [&]() -> orion_status {
    auto &self = *static_cast<Instance *>(instance);
    if (query == nullptr || out == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "query and out must not be NULL"};
    uint32_t limit = std::min(query->top_k, out->hit_capacity);
    if (limit > 0 && out->hits == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "out->hits is NULL with a non-zero capacity"};
    if (query->filter_count > 0 && query->filters == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "filters is NULL with a non-zero filter_count"};
    std::string ns = copy(query->ns, "the namespace");
    std::string text = copy(query->text, "the query text");
    if (limit == 0) return ORION_OK;
    Xapian::Query match = text_query(self, text);
    if (match.empty()) return ORION_OK;  // no searchable words: no hits
    std::vector<Xapian::Query> filters;
    filters.emplace_back(namespace_term(ns));
    for (size_t i = 0; i < query->filter_count; i++) {
      filters.emplace_back(metadata_term(copy(query->filters[i].key, "a filter key"), copy(query->filters[i].value, "a filter value")));
    }
    Xapian::Query filtered(Xapian::Query::OP_FILTER, match, Xapian::Query(Xapian::Query::OP_AND, filters.begin(), filters.end()));
    Store &store = *self.store;
    if (!store.on_disk()) {
      ExclusiveLock lock(store);
      run_search(self, store.db, filtered, limit, out);
      return ORION_OK;
    }
    SharedLock lock(store);
    std::unique_ptr<Reader> reader = store.checkout();
    try {
      run_search(self, reader->db, filtered, limit, out);
    } catch (const Xapian::DatabaseModifiedError &) {
      // Not expected (commits wait for the exclusive lock), but recoverable: reopen and retry.
      reader->db.reopen();
      reader->generation = store.generation;
      run_search(self, reader->db, filtered, limit, out);
    }
    store.checkin(std::move(reader));  // a reader that threw is dropped, not reused
    return ORION_OK;
  });
}

orion_status fx_clear(void *instance, orion_error *err) {
  return guarded(err, "clear", [&]() -> orion_status {
    Store &store = *static_cast<Instance *>(instance)->store;
    ExclusiveLock lock(store);
    if (!store.on_disk()) {
      store.db = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);  // frees the old index; the checkpoint goes with it
      return ORION_OK;
    }
    std::vector<Xapian::docid> all;
    all.reserve(store.db.get_doccount());
    for (auto it = store.db.postlist_begin(std::string()); it != store.db.postlist_end(std::string()); ++it) all.push_back(*it);
    store.transaction([&] {
      for (Xapian::docid id : all) store.db.delete_document(id);
      // The index no longer reflects any revision of the host's store.
      store.db.set_metadata(kCheckpointKey, std::string());
    });
    return ORION_OK;
  });
}

orion_status fx_checkpoint(void *instance, uint64_t checkpoint, orion_error *err) {
  return guarded(err, "checkpoint", [&]() -> orion_status {
    Store &store = *static_cast<Instance *>(instance)->store;
    ExclusiveLock lock(store);
    store.db.set_metadata(kCheckpointKey, std::to_string(checkpoint));
    store.db.commit();
    store.committed();
    return ORION_OK;
  });
}

orion_status fx_stats(void *instance, orion_retriever_stats *out, orion_error *err) {
  return guarded(err, "stats", [&]() -> orion_status {
    if (out == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, "out must not be NULL"};
    Store &store = *static_cast<Instance *>(instance)->store;
    ExclusiveLock lock(store);
    out->struct_size = sizeof(orion_retriever_stats);
    out->document_count = store.db.get_doccount();
    out->checkpoint = read_checkpoint(store.db);
    return ORION_OK;
  });
}

const orion_retriever_v1 kRetriever = {
    sizeof(orion_retriever_v1), fx_add, fx_remove, fx_search, fx_clear, fx_checkpoint, fx_stats,
};

const char kManifest[] =
    "{\"capabilities\":[\"retrieval\",\"retrieval.fts\"],"
    "\"summary\":\"BM25 full-text search over Xapian 1.4, in memory or on disk "
    "(path: index directory, default in memory; k1 default 1.2; b default 0.75; stemmer default english, none to disable; "
    "stopwords english or none, default english)\","
    "\"config_schema\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"path\":{\"type\":\"string\"},"
    "\"k1\":{\"type\":\"number\",\"minimum\":0},"
    "\"b\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
    "\"stemmer\":{\"type\":\"string\"},"
    "\"stopwords\":{\"enum\":[\"english\",\"none\"]}}}}";

const orion_plugin_info kInfo = {
    sizeof(orion_plugin_info),
    ORION_ABI_MAJOR,
    ORION_ABI_MINOR,
    "fts-xapian",
    "1.0.0",
    "",
    ORION_KIND_RETRIEVER,
    kManifest,
    fx_create,
    fx_destroy,
    &kRetriever,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

extern "C" ORION_EXPORT const orion_plugin_info *orion_plugin_v1_entry(const orion_host_api *host) {
  g_host = host;
  return &kInfo;
}