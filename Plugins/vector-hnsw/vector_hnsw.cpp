// vector-hnsw: approximate nearest-neighbour retriever for Orion over hnswlib (HNSW graphs).
//
// One hnswlib::HierarchicalNSW<float> (inner-product space) per namespace, created with the
// dimension of the namespace's first vector. Scores are the cosine similarity (vectors are
// normalised on insert and the query is normalised too) or the raw dot product.
//
// Metadata equality filters apply before ranking. Each namespace keeps, per metadata pair, the ids
// carrying it; a search sizes its filter from the smallest such list and either scans those ids
// exactly (small or selective sets: cheaper and exact) or runs a filtered graph search in which
// non-matching nodes are traversed but never collected. If the graph still yields fewer than k,
// an exact scan follows, so k matching documents always give k results.
//
// Writes (add, remove, clear) take the instance lock exclusively, one document at a time, so a
// long batch does not stall searches; searches share it. With `path`, checkpoint() saves every
// namespace (hnswlib's saveIndex plus a sidecar with the dimension and the id -> metadata map)
// under a new generation and then swaps the manifest in by rename; create() loads it back with
// the checkpoint, so the host can tell the index is current. An unreadable save is logged and
// ignored (checkpoint 0: the host rebuilds).
//
// Build (no SwiftPM needed):
//   g++ -std=c++17 -O3 -march=x86-64-v2 -shared -fPIC -Wall -Wextra -Wl,-z,defs
//       -I<orion>/PluginSDK/ABI/include Plugins/vector-hnsw/vector_hnsw.cpp
//       -o libvector-hnsw.so -lpthread
// Needs Debian's libhnswlib-dev (header only). Written against hnswlib 0.6.2 (Debian 12), which
// has no BaseFilterFunctor: the filtered search below walks hnswlib's public graph itself, the
// same way later hnswlib versions apply a filter functor. The plugin is one translation unit
// because hnswlib 0.6.2's header defines non-inline functions and globals (cpuid, the SIMD
// distance pointers): a second file including it fails to link with duplicate definitions.

#include <orion_plugin.h>

#include "../cxx-support/orion_plugin_support.hpp"

// Every standard header hnswlib uses comes first, so that the visibility pragma below applies to
// hnswlib's own declarations only (never to the standard library's).
#include <algorithm>
#include <assert.h>
#include <atomic>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <new>
#include <queue>
#include <random>
#include <shared_mutex>
#include <stdexcept>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

// hnswlib is header only and defines a few non-inline helpers (cpuid, AVXCapable, ...): keep them
// and every hnswlib template instantiation out of this library's dynamic symbol table, and keep
// the library's own warnings out of our build.
#pragma GCC visibility push(hidden)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <hnswlib/hnswlib.h>
#pragma GCC diagnostic pop
#pragma GCC visibility pop

namespace {

namespace fs = std::filesystem;
using HNSW = hnswlib::HierarchicalNSW<float>;
using Metadata = std::vector<std::pair<std::string, std::string>>;
using Filters = std::vector<std::pair<std::string_view, std::string_view>>;

const orion_host_api *g_host = nullptr;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

using orion_support::fail;
using orion_support::Failure;
using orion_support::write_error;

template <class Body>
orion_status guarded(orion_error *err, Body &&body) noexcept {
  try {
    body();
    return ORION_OK;
  } catch (const Failure &failure) {
    write_error(err, {failure.message.c_str()});
    return failure.status;
  } catch (const std::bad_alloc &) {
    write_error(err, {"vector-hnsw ran out of memory; lower maxElements or give the process more memory"});
    return ORION_ERR_RESOURCE_EXHAUSTED;
  } catch (const std::exception &e) {
    if (std::strncmp(e.what(), "Not enough memory", 17) == 0) {
      write_error(err, {"vector-hnsw ran out of memory (hnswlib: ", e.what()});
      return ORION_ERR_RESOURCE_EXHAUSTED;
    }
    write_error(err, {"vector-hnsw internal error (hnswlib): ", e.what()});
    return ORION_ERR_INTERNAL;
  } catch (...) {
    write_error(err, {"vector-hnsw internal error: unknown exception"});
    return ORION_ERR_INTERNAL;
  }
}

void host_log(orion_host_ctx *ctx, int32_t level, const std::string &message) noexcept {
  orion_support::host_log(g_host, ctx, level, message);
}

std::string to_string(orion_str s) { return s.len == 0 || s.ptr == nullptr ? std::string() : std::string(s.ptr, s.len); }
std::string_view to_view(orion_str s) { return s.len == 0 || s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len); }

/// A namespace name for a message: quoted, shortened.
std::string ns_label(std::string_view ns) {
  std::string out = "'";
  out.append(ns.substr(0, 64));
  if (ns.size() > 64) out.append("...");
  out.append("'");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Configuration: a flat JSON object, parsed strictly.
// ---------------------------------------------------------------------------------------------

struct Config {
  size_t M = 16;
  size_t efConstruction = 200;
  size_t efSearch = 64;
  bool cosine = true;
  size_t maxElements = 100000;
  std::string path;  // empty: in memory only
};

using orion_support::JsonValue;

const char *const kKnownKeys = "M, efConstruction, efSearch, metric, maxElements, path";

size_t integer_setting(const std::string &key, const JsonValue &v, double minimum, double maximum) {
  if (v.kind != JsonValue::Number || std::floor(v.number) != v.number || v.number < minimum || v.number > maximum) {
    std::string got = v.kind == JsonValue::Number ? v.text.substr(0, 32) : "a non-number";
    fail(ORION_ERR_CONFIG, "vector-hnsw: '" + key + "' must be an integer between " +
                               std::to_string(static_cast<long long>(minimum)) + " and " +
                               std::to_string(static_cast<long long>(maximum)) + ", got " + got);
  }
  return static_cast<size_t>(v.number);
}

Config parse_config(orion_str text) {
  Config config;
  orion_support::read_config_object(text, "vector-hnsw", "{\"M\": 16, \"metric\": \"cosine\"}", [&](const std::string &key, const JsonValue &v) {
    if (key == "M") {
      config.M = integer_setting(key, v, 2, 128);
    } else if (key == "efConstruction") {
      config.efConstruction = integer_setting(key, v, 1, 10000);
    } else if (key == "efSearch") {
      config.efSearch = integer_setting(key, v, 1, 10000);
    } else if (key == "maxElements") {
      config.maxElements = integer_setting(key, v, 1, 100000000);
    } else if (key == "metric") {
      if (v.kind != JsonValue::String || (v.text != "cosine" && v.text != "dot")) {
        fail(ORION_ERR_CONFIG, "vector-hnsw: 'metric' must be \"cosine\" or \"dot\"");
      }
      config.cosine = v.text == "cosine";
    } else if (key == "path") {
      if (v.kind != JsonValue::String || v.text.empty() || v.text.find('\0') != std::string::npos) {
        fail(ORION_ERR_CONFIG, "vector-hnsw: 'path' must be a non-empty string naming a directory for the saved index");
      }
      config.path = v.text;
    } else {
      fail(ORION_ERR_CONFIG, "vector-hnsw: unknown configuration key '" + key.substr(0, 64) + "'; known keys: " + kKnownKeys);
    }
  });
  return config;
}

// ---------------------------------------------------------------------------------------------
// A writer-preferring shared lock: std::shared_mutex on glibc prefers readers, so a steady stream
// of searches could starve add() forever. Writers pass a turnstile that new readers also pass.
// ---------------------------------------------------------------------------------------------

class FairSharedMutex {
 public:
  void lock() {
    std::lock_guard<std::mutex> gate(turnstile_);
    rw_.lock();
  }
  void unlock() { rw_.unlock(); }
  void lock_shared() {
    { std::lock_guard<std::mutex> gate(turnstile_); }
    rw_.lock_shared();
  }
  void unlock_shared() { rw_.unlock_shared(); }

 private:
  std::mutex turnstile_;
  std::shared_mutex rw_;
};

// ---------------------------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------------------------

struct Hit {
  int64_t id;
  float score;
};

bool better(const Hit &a, const Hit &b) { return a.score != b.score ? a.score > b.score : a.id < b.id; }

/// A posting key for one metadata pair; length-prefixed so that any bytes are unambiguous.
std::string posting_key(std::string_view key, std::string_view value) {
  std::string out = std::to_string(key.size());
  out.push_back(':');
  out.append(key);
  out.append(value);
  return out;
}

/// One namespace: its graph, the live documents' metadata and, per metadata pair, the live ids
/// that carry it (to size a filter before choosing how to search). A document is live iff it is
/// in `live`; every other label in the graph is marked deleted.
struct Namespace {
  uint32_t dim = 0;
  std::unique_ptr<hnswlib::InnerProductSpace> space;  // declared before `index`: outlives it
  std::unique_ptr<HNSW> index;
  std::unordered_map<int64_t, Metadata> live;
  std::unordered_map<std::string, std::unordered_set<int64_t>> postings;

  void index_metadata(int64_t id, const Metadata &metadata) {
    for (const auto &kv : metadata) postings[posting_key(kv.first, kv.second)].insert(id);
  }
  void unindex_metadata(int64_t id, const Metadata &metadata) {
    for (const auto &kv : metadata) {
      auto found = postings.find(posting_key(kv.first, kv.second));
      if (found == postings.end()) continue;
      found->second.erase(id);
      if (found->second.empty()) postings.erase(found);
    }
  }
  /// The smallest posting list among the filters' pairs; nullptr when some pair matches nothing.
  const std::unordered_set<int64_t> *smallest_posting(const Filters &filters) const {
    const std::unordered_set<int64_t> *smallest = nullptr;
    for (const auto &f : filters) {
      auto found = postings.find(posting_key(f.first, f.second));
      if (found == postings.end()) return nullptr;
      if (smallest == nullptr || found->second.size() < smallest->size()) smallest = &found->second;
    }
    return smallest;
  }
};

hnswlib::labeltype label_of(int64_t id) { return static_cast<hnswlib::labeltype>(static_cast<uint64_t>(id)); }
int64_t id_of(hnswlib::labeltype label) { return static_cast<int64_t>(static_cast<uint64_t>(label)); }

bool matches(const Metadata &meta, const Filters &filters) {
  for (const auto &f : filters) {
    bool found = false;
    for (const auto &kv : meta) {
      if (kv.first == f.first) {
        found = kv.second == f.second;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

/// hnswlib's base-layer search with an admission predicate (what hnswlib >= 0.7 does with a
/// BaseFilterFunctor): every node is traversed, so the graph stays connected, but only admitted,
/// non-deleted nodes are collected. Returns up to k (distance, label) pairs, in no order.
/// Read-only on the graph: safe concurrently with other searches.
template <class Admit>
std::vector<std::pair<float, hnswlib::labeltype>> filtered_search(const HNSW &h, const float *query, size_t k, size_t ef,
                                                                  Admit admit) {
  using hnswlib::tableint;
  std::vector<std::pair<float, hnswlib::labeltype>> out;
  if (h.cur_element_count == 0 || k == 0) return out;
  ef = std::max(ef, k);

  tableint current = h.enterpoint_node_;
  float current_dist = h.fstdistfunc_(query, h.getDataByInternalId(current), h.dist_func_param_);
  for (int level = h.maxlevel_; level > 0; level--) {
    bool changed = true;
    while (changed) {
      changed = false;
      unsigned int *data = reinterpret_cast<unsigned int *>(h.get_linklist(current, level));
      int size = h.getListCount(data);
      const tableint *links = reinterpret_cast<const tableint *>(data + 1);
      for (int i = 0; i < size; i++) {
        tableint candidate = links[i];
        float d = h.fstdistfunc_(query, h.getDataByInternalId(candidate), h.dist_func_param_);
        if (d < current_dist) {
          current_dist = d;
          current = candidate;
          changed = true;
        }
      }
    }
  }

  using Pair = std::pair<float, tableint>;
  using Queue = std::priority_queue<Pair, std::vector<Pair>, typename HNSW::CompareByFirst>;
  Queue top;         // the best admitted nodes so far; worst on top
  Queue candidates;  // nodes to expand; by negated distance, nearest on top
  auto admitted = [&](tableint node) { return !h.isMarkedDeleted(node) && admit(h.getExternalLabel(node)); };

  hnswlib::VisitedList *visited_list = h.visited_list_pool_->getFreeVisitedList();
  hnswlib::vl_type *visited = visited_list->mass;
  hnswlib::vl_type tag = visited_list->curV;
  float lower_bound;
  if (admitted(current)) {
    top.emplace(current_dist, current);
    candidates.emplace(-current_dist, current);
    lower_bound = current_dist;
  } else {
    lower_bound = std::numeric_limits<float>::max();
    candidates.emplace(-lower_bound, current);
  }
  visited[current] = tag;

  while (!candidates.empty()) {
    Pair next = candidates.top();
    if (-next.first > lower_bound && top.size() == ef) break;
    candidates.pop();
    unsigned int *data = reinterpret_cast<unsigned int *>(h.get_linklist0(next.second));
    size_t size = h.getListCount(data);
    for (size_t j = 1; j <= size; j++) {
      tableint candidate = data[j];
      if (visited[candidate] == tag) continue;
      visited[candidate] = tag;
      float d = h.fstdistfunc_(query, h.getDataByInternalId(candidate), h.dist_func_param_);
      if (top.size() < ef || lower_bound > d) {
        candidates.emplace(-d, candidate);
        if (admitted(candidate)) top.emplace(d, candidate);
        if (top.size() > ef) top.pop();
        if (!top.empty()) lower_bound = top.top().first;
      }
    }
  }
  h.visited_list_pool_->releaseVisitedList(visited_list);

  while (top.size() > k) top.pop();
  out.reserve(top.size());
  while (!top.empty()) {
    out.emplace_back(top.top().first, h.getExternalLabel(top.top().second));
    top.pop();
  }
  return out;
}

/// Exact top-k among the live documents matching `filters` (all of them when there are none).
/// With filters, only the ids of the filters' smallest posting list are examined.
std::vector<Hit> exact_scan(const Namespace &ns, const float *query, size_t k, const Filters &filters) {
  const HNSW &h = *ns.index;
  auto worse_on_top = [](const Hit &a, const Hit &b) { return better(a, b); };
  std::priority_queue<Hit, std::vector<Hit>, decltype(worse_on_top)> heap(worse_on_top);
  auto consider = [&](int64_t id) {
    auto found = h.label_lookup_.find(label_of(id));
    if (found == h.label_lookup_.end()) return;  // cannot happen: live ids are in the graph
    float d = h.fstdistfunc_(query, h.getDataByInternalId(found->second), h.dist_func_param_);
    Hit hit{id, 1.0f - d};
    if (heap.size() < k) {
      heap.push(hit);
    } else if (better(hit, heap.top())) {
      heap.pop();
      heap.push(hit);
    }
  };
  if (filters.empty()) {
    for (const auto &entry : ns.live) consider(entry.first);
  } else if (const std::unordered_set<int64_t> *candidates = ns.smallest_posting(filters)) {
    for (int64_t id : *candidates) {
      auto doc = ns.live.find(id);
      if (doc != ns.live.end() && (filters.size() == 1 || matches(doc->second, filters))) consider(id);
    }
  }
  std::vector<Hit> hits;
  hits.reserve(heap.size());
  while (!heap.empty()) {
    hits.push_back(heap.top());
    heap.pop();
  }
  std::sort(hits.begin(), hits.end(), better);
  return hits;
}

// ---------------------------------------------------------------------------------------------
// Binary files for persistence (native byte order; the files are not meant to move between
// machines of different endianness).
// ---------------------------------------------------------------------------------------------

struct LoadError {
  std::string message;
};

class BinWriter {
 public:
  template <class T>
  void pod(T value) {
    buffer_.append(reinterpret_cast<const char *>(&value), sizeof value);
  }
  void bytes(std::string_view s) {
    pod<uint32_t>(static_cast<uint32_t>(s.size()));
    buffer_.append(s.data(), s.size());
  }
  void raw(std::string_view s) { buffer_.append(s.data(), s.size()); }
  /// Writes the buffer to `file`; throws Failure when the write fails.
  void save(const fs::path &file) const {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    out.close();
    if (!out) fail(ORION_ERR_UNAVAILABLE, "vector-hnsw could not write " + file.string() + "; check free space and permissions of 'path'");
  }

 private:
  std::string buffer_;
};

class BinReader {
 public:
  explicit BinReader(const fs::path &file) : name_(file.string()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw LoadError{"cannot open " + name_};
    data_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw LoadError{"cannot read " + name_};
  }
  template <class T>
  T pod() {
    T value;
    need(sizeof value);
    std::memcpy(&value, data_.data() + at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  std::string bytes() {
    uint32_t n = pod<uint32_t>();
    need(n);
    std::string s = data_.substr(at_, n);
    at_ += n;
    return s;
  }
  void expect(std::string_view magic) {
    need(magic.size());
    if (std::string_view(data_).substr(at_, magic.size()) != magic) throw LoadError{name_ + " is not a vector-hnsw file"};
    at_ += magic.size();
  }
  bool done() const { return at_ == data_.size(); }
  const std::string &name() const { return name_; }

 private:
  void need(size_t n) const {
    if (data_.size() - at_ < n) throw LoadError{name_ + " is truncated"};
  }
  std::string name_;
  std::string data_;
  size_t at_ = 0;
};

constexpr std::string_view kManifestMagic = "ORION-HNSW-MANIFEST\n";
constexpr std::string_view kMetaMagic = "ORION-HNSW-META\n";
constexpr uint32_t kFormatVersion = 1;
constexpr const char *kManifestName = "manifest";

/// The size hnswlib's saveIndex writes for `h` (to detect a short write: saveIndex checks nothing).
uint64_t expected_index_size(const HNSW &h) {
  uint64_t size = sizeof h.offsetLevel0_ + sizeof h.max_elements_ + sizeof(size_t) /* cur_element_count */ +
                  sizeof h.size_data_per_element_ + sizeof h.label_offset_ + sizeof h.offsetData_ + sizeof h.maxlevel_ +
                  sizeof h.enterpoint_node_ + sizeof h.maxM_ + sizeof h.maxM0_ + sizeof h.M_ + sizeof h.mult_ +
                  sizeof h.ef_construction_;
  size_t count = h.cur_element_count;
  size += static_cast<uint64_t>(count) * h.size_data_per_element_;
  for (size_t i = 0; i < count; i++) {
    size += sizeof(unsigned int);
    if (h.element_levels_[i] > 0) size += static_cast<uint64_t>(h.size_links_per_element_) * h.element_levels_[i];
  }
  return size;
}

std::string file_stem(uint64_t generation, size_t index) {
  return "g" + std::to_string(generation) + "-n" + std::to_string(index);
}

/// The highest generation among this plugin's data files in `dir` (0 when there are none), so a
/// new checkpoint never rewrites files an older manifest may still name.
uint64_t highest_generation_on_disk(const fs::path &dir) {
  uint64_t highest = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() < 2 || name[0] != 'g') continue;
    uint64_t generation = 0;
    auto parsed = std::from_chars(name.data() + 1, name.data() + name.size(), generation);
    if (parsed.ec == std::errc() && parsed.ptr < name.data() + name.size() && *parsed.ptr == '-') highest = std::max(highest, generation);
  }
  return highest;
}

/// Removes this plugin's data files that do not belong to `generation`.
void remove_stale_files(const fs::path &dir, uint64_t generation) {
  std::error_code ec;
  const std::string keep = "g" + std::to_string(generation) + "-";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    bool ours = name.size() > 1 && name[0] == 'g' && name.find("-n") != std::string::npos &&
                (name.size() > 5 && (name.compare(name.size() - 5, 5, ".hnsw") == 0 || name.compare(name.size() - 5, 5, ".meta") == 0));
    if ((ours && name.compare(0, keep.size(), keep) != 0) || name == std::string(kManifestName) + ".tmp") {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The instance
// ---------------------------------------------------------------------------------------------

struct Staged {
  std::string ns;
  int64_t id;
  std::vector<float> vector;
  Metadata metadata;
};

class Instance {
 public:
  Instance(orion_host_ctx *ctx, Config config) : ctx_(ctx), config_(std::move(config)) {}

  void open_storage() {
    if (config_.path.empty()) return;
    fs::path dir(config_.path);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (!fs::is_directory(dir, ec)) {
      fail(ORION_ERR_CONFIG, "vector-hnsw: 'path' (" + config_.path + ") is not a directory and could not be created" +
                                 (ec ? ": " + ec.message() : std::string()));
    }
    {
      fs::path probe = dir / ".vector-hnsw-write-test";
      std::ofstream out(probe, std::ios::binary | std::ios::trunc);
      out << "ok";
      out.close();
      bool ok = static_cast<bool>(out);
      fs::remove(probe, ec);
      if (!ok) fail(ORION_ERR_CONFIG, "vector-hnsw: 'path' (" + config_.path + ") is not writable; give a directory this process may write");
    }
    generation_ = highest_generation_on_disk(dir);
    if (!fs::exists(dir / kManifestName, ec)) return;
    try {
      load(dir);
      host_log(ctx_, ORION_LOG_INFO,
               "vector-hnsw loaded " + std::to_string(namespaces_.size()) + " namespace(s), " + std::to_string(document_count()) +
                   " document(s) at checkpoint " + std::to_string(checkpoint_.load()) + " from " + config_.path);
    } catch (const LoadError &e) {
      namespaces_.clear();
      checkpoint_ = 0;
      generation_ = highest_generation_on_disk(dir);
      host_log(ctx_, ORION_LOG_WARNING,
               "vector-hnsw ignores the saved index in " + config_.path + " (" + e.message + "); starting empty at checkpoint 0 so the host rebuilds it");
    }
  }

  void add(const orion_document *docs, size_t count) {
    if (count == 0) return;
    if (docs == nullptr) fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: add() got a NULL document array with a non-zero count");
    // Validate and copy the batch before taking the lock.
    std::vector<Staged> batch;
    batch.reserve(count);
    // A document without a vector cannot be found by vector: it is not indexed, and an earlier
    // version of it is removed (as vector-flat does), so text-only documents can share a store.
    std::vector<std::pair<std::string, int64_t>> unvectored;
    for (size_t i = 0; i < count; i++) {
      const orion_document &doc = docs[i];
      if (doc.vector == nullptr || doc.dimensions == 0) {
        unvectored.emplace_back(to_string(doc.ns), doc.id);
        continue;
      }
      if (doc.metadata_count > 0 && doc.metadata == nullptr) {
        fail(ORION_ERR_INVALID_ARGUMENT, "document " + std::to_string(doc.id) + " has metadata_count > 0 but no metadata array");
      }
      Staged staged{to_string(doc.ns), doc.id, std::vector<float>(doc.vector, doc.vector + doc.dimensions), {}};
      if (!normalise(staged.vector)) {
        fail(ORION_ERR_INVALID_ARGUMENT, "document " + std::to_string(doc.id) + " has a vector with NaN or infinite values");
      }
      staged.metadata.reserve(doc.metadata_count);
      for (size_t m = 0; m < doc.metadata_count; m++) {
        std::string key = to_string(doc.metadata[m].key), value = to_string(doc.metadata[m].value);
        auto same = std::find_if(staged.metadata.begin(), staged.metadata.end(), [&](const auto &kv) { return kv.first == key; });
        if (same != staged.metadata.end()) same->second = std::move(value);  // a repeated key: the last one wins
        else staged.metadata.emplace_back(std::move(key), std::move(value));
      }
      batch.push_back(std::move(staged));
    }

    {
      // Dimensions: the namespace's, or fixed by the batch's first vector for a new namespace.
      std::shared_lock<FairSharedMutex> lock(mutex_);
      std::unordered_map<std::string_view, uint32_t> dims;
      for (const Staged &doc : batch) {
        uint32_t dim = static_cast<uint32_t>(doc.vector.size());
        auto known = dims.find(doc.ns);
        if (known == dims.end()) {
          auto existing = namespaces_.find(doc.ns);
          known = dims.emplace(doc.ns, existing != namespaces_.end() ? existing->second->dim : dim).first;
        }
        if (known->second != dim) {
          fail(ORION_ERR_INVALID_ARGUMENT, "document " + std::to_string(doc.id) + " has " + std::to_string(dim) + " dimensions; namespace " +
                                               ns_label(doc.ns) + " holds " + std::to_string(known->second) +
                                               "-dimensional vectors (nothing in this batch was indexed)");
        }
      }
    }
    // One document per exclusive section (an insertion takes about a millisecond), so searches
    // interleave with a long batch instead of waiting for all of it.
    for (Staged &doc : batch) {
      std::unique_lock<FairSharedMutex> lock(mutex_);
      insert(doc);
    }
    if (!unvectored.empty()) {
      std::unique_lock<FairSharedMutex> lock(mutex_);
      for (const auto &[ns_name, id] : unvectored) drop(ns_name, id);
    }
  }

  /// Removes document `id` of namespace `ns_name` if indexed. Caller holds the exclusive lock.
  void drop(const std::string &ns_name, int64_t id) {
    auto found = namespaces_.find(ns_name);
    if (found == namespaces_.end()) return;
    Namespace &ns = *found->second;
    auto doc = ns.live.find(id);
    if (doc == ns.live.end()) return;  // unknown or already removed: ignored
    ns.unindex_metadata(doc->first, doc->second);
    ns.live.erase(doc);
    ns.index->markDelete(label_of(id));
    if (ns.live.empty()) namespaces_.erase(found);  // frees the graph; the next add starts afresh
  }

  /// Inserts or replaces one validated document. Caller holds the exclusive lock.
  void insert(Staged &doc) {
    auto found = namespaces_.find(doc.ns);
    if (found == namespaces_.end()) {
      auto ns = std::make_unique<Namespace>();
      ns->dim = static_cast<uint32_t>(doc.vector.size());
      ns->space = std::make_unique<hnswlib::InnerProductSpace>(ns->dim);
      ns->index = std::make_unique<HNSW>(ns->space.get(), config_.maxElements, config_.M, config_.efConstruction);
      ns->index->setEf(config_.efSearch);
      found = namespaces_.emplace(doc.ns, std::move(ns)).first;
    }
    Namespace &ns = *found->second;
    if (ns.dim != doc.vector.size()) {
      // Only possible when another thread emptied the namespace and refilled it with another
      // dimension while this batch was being applied.
      fail(ORION_ERR_INVALID_ARGUMENT, "document " + std::to_string(doc.id) + " has " + std::to_string(doc.vector.size()) +
                                           " dimensions; namespace " + ns_label(doc.ns) + " now holds " + std::to_string(ns.dim) +
                                           "-dimensional vectors (it changed while this batch was applied; earlier documents were indexed)");
    }
    HNSW &h = *ns.index;
    hnswlib::labeltype label = label_of(doc.id);
    if (h.label_lookup_.find(label) == h.label_lookup_.end() && h.cur_element_count >= h.max_elements_) {
      const size_t limit = std::numeric_limits<hnswlib::tableint>::max() - 1;
      if (h.max_elements_ >= limit) {
        fail(ORION_ERR_RESOURCE_EXHAUSTED, "namespace " + ns_label(doc.ns) + " is full (" + std::to_string(h.max_elements_) + " points)");
      }
      h.resizeIndex(std::min(limit, std::max<size_t>(2 * h.max_elements_, 1)));
    }
    // An existing label (live or deleted) is updated in place, and undeleted, by hnswlib.
    h.addPoint(doc.vector.data(), label);
    auto previous = ns.live.find(doc.id);
    if (previous != ns.live.end()) {
      ns.unindex_metadata(doc.id, previous->second);
      previous->second = std::move(doc.metadata);
      ns.index_metadata(doc.id, previous->second);
    } else {
      auto inserted = ns.live.emplace(doc.id, std::move(doc.metadata)).first;
      ns.index_metadata(doc.id, inserted->second);
    }
  }

  void remove(orion_str ns_name, const int64_t *ids, size_t count) {
    if (count == 0) return;
    if (ids == nullptr) fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: remove() got a NULL id array with a non-zero count");
    std::unique_lock<FairSharedMutex> lock(mutex_);
    std::string name = to_string(ns_name);
    for (size_t i = 0; i < count; i++) drop(name, ids[i]);
  }

  void search(const orion_query *query, orion_search_out *out) {
    if (query == nullptr || out == nullptr) fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: search() got a NULL query or output");
    if (query->vector == nullptr || query->dimensions == 0) {
      fail(ORION_ERR_INVALID_ARGUMENT,
           "vector-hnsw needs a query vector; send one with the query or configure an embedding engine for the tier");
    }
    if (query->filter_count > 0 && query->filters == nullptr) {
      fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: the query has filter_count > 0 but no filter array");
    }
    out->hit_count = 0;
    out->detail_count = 0;
    size_t k = std::min<size_t>(query->top_k, out->hit_capacity);
    if (k > 0 && out->hits == nullptr) fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: search() output has hit_capacity > 0 but no hits array");
    std::vector<float> q(query->vector, query->vector + query->dimensions);
    if (!normalise(q)) fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: the query vector has NaN or infinite values");
    Filters filters;
    filters.reserve(query->filter_count);
    for (size_t i = 0; i < query->filter_count; i++) filters.emplace_back(to_view(query->filters[i].key), to_view(query->filters[i].value));
    std::string ns_name = to_string(query->ns);

    std::vector<Hit> hits;
    {
      std::shared_lock<FairSharedMutex> lock(mutex_);
      auto found = namespaces_.find(ns_name);
      if (found == namespaces_.end()) return;
      const Namespace &ns = *found->second;
      if (ns.dim != q.size()) {
        fail(ORION_ERR_INVALID_ARGUMENT, "the query vector has " + std::to_string(q.size()) + " dimensions; namespace " + ns_label(ns_name) +
                                             " holds " + std::to_string(ns.dim) + "-dimensional vectors");
      }
      if (k == 0) return;
      std::vector<std::pair<float, hnswlib::labeltype>> found_points;
      bool exact_done = false;
      if (filters.empty()) {
        // ef = max(efSearch, k): setEf(efSearch) was applied when the graph was made or loaded.
        auto queue = ns.index->searchKnn(q.data(), k);
        found_points.reserve(queue.size());
        for (; !queue.empty(); queue.pop()) found_points.push_back(queue.top());
      } else {
        // Plan: the filters' smallest posting list bounds the matches. An exact scan of m
        // documents costs m distances; a filtered graph search costs about C / s, where C is an
        // unfiltered search's cost (~2·M·ef distances) and s = m / n the selectivity. The scan
        // wins when m² < C·n. It is also exact, so small filtered sets are never approximate.
        const std::unordered_set<int64_t> *smallest = ns.smallest_posting(filters);
        if (smallest == nullptr) return;  // some filter pair matches no document
        double m = static_cast<double>(smallest->size()), n = static_cast<double>(ns.live.size());
        double cost = 2.0 * static_cast<double>(ns.index->M_) * static_cast<double>(std::max(config_.efSearch, k));
        if (m <= static_cast<double>(k) || m * m <= cost * n) {
          hits = exact_scan(ns, q.data(), k, filters);
          exact_done = true;
        } else {
          found_points = filtered_search(*ns.index, q.data(), k, std::max(config_.efSearch, k), [&](hnswlib::labeltype label) {
            auto doc = ns.live.find(id_of(label));
            return doc != ns.live.end() && matches(doc->second, filters);
          });
        }
      }
      hits.reserve(found_points.size());
      for (const auto &point : found_points) {
        int64_t id = id_of(point.second);
        if (ns.live.count(id) == 0) continue;  // never return a removed document
        hits.push_back(Hit{id, 1.0f - point.first});
      }
      // The graph may miss matches (a selective filter, many deletions): then scan exactly, so
      // k matching documents always give k results.
      if (!exact_done && hits.size() < k && hits.size() < ns.live.size()) {
        std::vector<Hit> exact = exact_scan(ns, q.data(), k, filters);
        if (exact.size() > hits.size()) hits = std::move(exact);
      }
    }
    std::sort(hits.begin(), hits.end(), better);
    if (hits.size() > k) hits.resize(k);
    for (size_t i = 0; i < hits.size(); i++) {
      out->hits[i] = orion_hit{hits[i].id, hits[i].score, ORION_SOURCE_VECTOR, 0, 0};
    }
    out->hit_count = static_cast<uint32_t>(hits.size());
  }

  void clear() {
    std::unique_lock<FairSharedMutex> lock(mutex_);
    namespaces_.clear();
  }

  void checkpoint(uint64_t value) {
    if (config_.path.empty()) {
      checkpoint_ = value;
      return;
    }
    std::lock_guard<std::mutex> persisting(persist_mutex_);  // one checkpoint at a time
    std::shared_lock<FairSharedMutex> lock(mutex_);          // searches go on; writes wait
    save(value);
    checkpoint_ = value;
  }

  void stats(orion_retriever_stats *out) {
    if (out == nullptr) fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: stats() got a NULL output");
    std::shared_lock<FairSharedMutex> lock(mutex_);
    out->struct_size = sizeof(orion_retriever_stats);
    out->document_count = document_count();
    out->checkpoint = checkpoint_.load();
  }

 private:
  /// Normalises `v` in place for the cosine metric; false when a value is not finite.
  bool normalise(std::vector<float> &v) const {
    double norm = 0;
    for (float x : v) {
      if (!std::isfinite(x)) return false;
      norm += static_cast<double>(x) * x;
    }
    if (!config_.cosine) return true;
    norm = std::sqrt(norm);
    float scale = norm > 0 ? static_cast<float>(1.0 / norm) : 0.0f;
    for (float &x : v) x *= scale;
    return true;
  }

  uint64_t document_count() const {
    uint64_t total = 0;
    for (const auto &entry : namespaces_) total += entry.second->live.size();
    return total;
  }

  /// Writes generation+1: every namespace's graph and sidecar, then the manifest (atomically, by
  /// rename), then removes the previous generation's files. Caller holds persist_mutex_ and a
  /// shared lock on mutex_.
  void save(uint64_t checkpoint_value) {
    fs::path dir(config_.path);
    std::error_code ec;
    fs::create_directories(dir, ec);
    uint64_t generation = generation_ + 1;
    BinWriter manifest;
    manifest.raw(kManifestMagic);
    manifest.pod<uint32_t>(kFormatVersion);
    manifest.pod<uint64_t>(checkpoint_value);
    manifest.pod<uint64_t>(generation);
    manifest.pod<uint8_t>(config_.cosine ? 0 : 1);
    manifest.pod<uint32_t>(static_cast<uint32_t>(namespaces_.size()));
    size_t index = 0;
    for (const auto &entry : namespaces_) {
      const Namespace &ns = *entry.second;
      std::string stem = file_stem(generation, index++);
      fs::path graph_file = dir / (stem + ".hnsw");
      ns.index->saveIndex(graph_file.string());
      uint64_t want = expected_index_size(*ns.index);
      uint64_t got = fs::file_size(graph_file, ec);
      if (ec || got != want) {
        fail(ORION_ERR_UNAVAILABLE, "vector-hnsw could not write " + graph_file.string() + " (wrote " + std::to_string(ec ? 0 : got) + " of " +
                                        std::to_string(want) + " bytes); check free space and permissions of 'path'");
      }
      BinWriter meta;
      meta.raw(kMetaMagic);
      meta.pod<uint32_t>(kFormatVersion);
      meta.pod<uint32_t>(ns.dim);
      meta.pod<uint64_t>(ns.live.size());
      for (const auto &doc : ns.live) {
        meta.pod<int64_t>(doc.first);
        meta.pod<uint32_t>(static_cast<uint32_t>(doc.second.size()));
        for (const auto &kv : doc.second) {
          meta.bytes(kv.first);
          meta.bytes(kv.second);
        }
      }
      meta.save(dir / (stem + ".meta"));
      manifest.bytes(entry.first);
      manifest.pod<uint32_t>(ns.dim);
    }
    fs::path temporary = dir / (std::string(kManifestName) + ".tmp");
    manifest.save(temporary);
    fs::rename(temporary, dir / kManifestName, ec);
    if (ec) fail(ORION_ERR_UNAVAILABLE, "vector-hnsw could not replace " + (dir / kManifestName).string() + ": " + ec.message());
    generation_ = generation;
    remove_stale_files(dir, generation);
  }

  void load(const fs::path &dir) {
    BinReader manifest(dir / kManifestName);
    manifest.expect(kManifestMagic);
    if (manifest.pod<uint32_t>() != kFormatVersion) throw LoadError{"unsupported manifest version"};
    uint64_t checkpoint_value = manifest.pod<uint64_t>();
    uint64_t generation = manifest.pod<uint64_t>();
    bool cosine = manifest.pod<uint8_t>() == 0;
    if (cosine != config_.cosine) {
      throw LoadError{std::string("it was built for the ") + (cosine ? "cosine" : "dot") + " metric and this instance uses " +
                      (config_.cosine ? "cosine" : "dot")};
    }
    uint32_t count = manifest.pod<uint32_t>();
    std::unordered_map<std::string, std::unique_ptr<Namespace>> loaded;
    for (uint32_t i = 0; i < count; i++) {
      std::string name = manifest.bytes();
      uint32_t dim = manifest.pod<uint32_t>();
      if (dim == 0 || dim > (1u << 20)) throw LoadError{"bad dimension in the manifest"};
      std::string stem = file_stem(generation, i);
      auto ns = std::make_unique<Namespace>();
      ns->dim = dim;
      ns->space = std::make_unique<hnswlib::InnerProductSpace>(dim);
      fs::path graph_file = dir / (stem + ".hnsw");
      std::error_code ec;
      if (!fs::is_regular_file(graph_file, ec)) throw LoadError{"missing " + graph_file.string()};
      try {
        ns->index = std::make_unique<HNSW>(ns->space.get(), graph_file.string(), false, config_.maxElements);
      } catch (const std::exception &e) {
        throw LoadError{graph_file.string() + ": " + e.what()};
      }
      HNSW &h = *ns->index;
      if (h.data_size_ != dim * sizeof(float) || h.size_data_per_element_ != h.size_links_level0_ + h.data_size_ + sizeof(hnswlib::labeltype)) {
        throw LoadError{graph_file.string() + " does not match the manifest's dimension"};
      }
      // hnswlib 0.6.2's loading constructor leaves these uninitialised before counting into them.
      h.num_deleted_ = 0;
      for (size_t p = 0; p < h.cur_element_count; p++) {
        if (h.isMarkedDeleted(static_cast<hnswlib::tableint>(p))) h.num_deleted_++;
      }
      h.metric_hops = 0;
      h.metric_distance_computations = 0;
      h.setEf(config_.efSearch);

      BinReader meta(dir / (stem + ".meta"));
      meta.expect(kMetaMagic);
      if (meta.pod<uint32_t>() != kFormatVersion) throw LoadError{"unsupported sidecar version in " + meta.name()};
      if (meta.pod<uint32_t>() != dim) throw LoadError{meta.name() + " does not match the manifest's dimension"};
      uint64_t documents = meta.pod<uint64_t>();
      for (uint64_t d = 0; d < documents; d++) {
        int64_t id = meta.pod<int64_t>();
        uint32_t pairs = meta.pod<uint32_t>();
        Metadata metadata;
        for (uint32_t m = 0; m < pairs; m++) {
          std::string key = meta.bytes();
          std::string value = meta.bytes();
          metadata.emplace_back(std::move(key), std::move(value));
        }
        auto point = h.label_lookup_.find(label_of(id));
        if (point == h.label_lookup_.end() || h.isMarkedDeleted(point->second)) {
          throw LoadError{meta.name() + " lists document " + std::to_string(id) + " that the graph does not hold"};
        }
        auto inserted = ns->live.emplace(id, std::move(metadata));
        if (!inserted.second) throw LoadError{meta.name() + " lists document " + std::to_string(id) + " twice"};
        ns->index_metadata(id, inserted.first->second);
      }
      if (!meta.done()) throw LoadError{meta.name() + " has trailing bytes"};
      if (ns->live.size() != h.label_lookup_.size() - h.num_deleted_) {
        throw LoadError{graph_file.string() + " and its sidecar disagree on the live documents"};
      }
      if (!ns->live.empty()) loaded.emplace(std::move(name), std::move(ns));
    }
    if (!manifest.done()) throw LoadError{"the manifest has trailing bytes"};
    namespaces_ = std::move(loaded);
    checkpoint_ = checkpoint_value;
    generation_ = generation;
    remove_stale_files(dir, generation);
  }

  orion_host_ctx *ctx_;
  const Config config_;
  FairSharedMutex mutex_;  // searches and stats shared; add, remove, clear exclusive
  std::mutex persist_mutex_;
  std::unordered_map<std::string, std::unique_ptr<Namespace>> namespaces_;
  std::atomic<uint64_t> checkpoint_{0};
  uint64_t generation_ = 0;  // guarded by persist_mutex_ (and set in create before sharing)
};

// ---------------------------------------------------------------------------------------------
// The C ABI
// ---------------------------------------------------------------------------------------------

Instance *self_of(void *instance) { return static_cast<Instance *>(instance); }

orion_status hnsw_create(orion_host_ctx *ctx, orion_str config, void **out, orion_error *err) {
  if (out != nullptr) *out = nullptr;
  return guarded(err, [&] {
    if (out == nullptr) fail(ORION_ERR_INVALID_ARGUMENT, "vector-hnsw: create() got a NULL output pointer");
    auto instance = std::make_unique<Instance>(ctx, parse_config(config));
    instance->open_storage();
    *out = instance.release();
  });
}

void hnsw_destroy(void *instance) { delete self_of(instance); }

orion_status hnsw_add(void *instance, const orion_document *docs, size_t count, orion_error *err) {
  return guarded(err, [&] { self_of(instance)->add(docs, count); });
}

orion_status hnsw_remove(void *instance, orion_str ns, const int64_t *ids, size_t count, orion_error *err) {
  return guarded(err, [&] { self_of(instance)->remove(ns, ids, count); });
}

orion_status hnsw_search(void *instance, const orion_query *query, orion_search_out *out, orion_error *err) {
  return guarded(err, [&] { self_of(instance)->search(query, out); });
}

orion_status hnsw_clear(void *instance, orion_error *err) {
  return guarded(err, [&] { self_of(instance)->clear(); });
}

orion_status hnsw_checkpoint(void *instance, uint64_t checkpoint, orion_error *err) {
  return guarded(err, [&] { self_of(instance)->checkpoint(checkpoint); });
}

orion_status hnsw_stats(void *instance, orion_retriever_stats *out, orion_error *err) {
  return guarded(err, [&] { self_of(instance)->stats(out); });
}

const char kManifest[] =
    "{\"capabilities\":[\"retrieval\",\"retrieval.vector\"],"
    "\"summary\":\"Approximate cosine / dot-product vector search with HNSW graphs (hnswlib), one per namespace, "
    "metadata filters inside the graph search, optional persistence. Defaults: M 16, efConstruction 200, efSearch 64, "
    "metric cosine, maxElements 100000 (doubles when full), no path (in memory).\","
    "\"config_schema\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"M\":{\"type\":\"integer\",\"minimum\":2,\"maximum\":128},"
    "\"efConstruction\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10000},"
    "\"efSearch\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10000},"
    "\"metric\":{\"enum\":[\"cosine\",\"dot\"]},"
    "\"maxElements\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000000},"
    "\"path\":{\"type\":\"string\"}}}}";

const orion_retriever_v1 kRetriever = {
    sizeof(orion_retriever_v1), hnsw_add, hnsw_remove, hnsw_search, hnsw_clear, hnsw_checkpoint, hnsw_stats,
};

const orion_plugin_info kInfo = {
    sizeof(orion_plugin_info),
    ORION_ABI_MAJOR,
    ORION_ABI_MINOR,
    "vector-hnsw",
    "1.0.0",
    "",
    ORION_KIND_RETRIEVER,
    kManifest,
    hnsw_create,
    hnsw_destroy,
    &kRetriever,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

extern "C" ORION_EXPORT const orion_plugin_info *orion_plugin_v1_entry(const orion_host_api *host) {
  if (host != nullptr && host->abi_major != ORION_ABI_MAJOR) {
    if (host->log != nullptr) {
      const char message[] = "vector-hnsw is built for Orion plugin ABI 1 and this host speaks another major version";
      host->log(nullptr, ORION_LOG_ERROR, orion_str{message, sizeof message - 1});
    }
    return nullptr;
  }
  g_host = host;
  return &kInfo;
}
