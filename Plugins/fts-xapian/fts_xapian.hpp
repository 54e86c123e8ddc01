// fts-xapian's declarations, shared by its source files; not part of any public interface.
// The design is described at the top of fts_xapian.cpp. Files: fts_xapian.cpp (queries, searches,
// writes and the C ABI), terms.cpp (index terms and the configuration), store.cpp (opening and
// sharing databases).

#pragma once

#include <orion_plugin.h>
#include <xapian.h>

#include "../cxx-support/orion_plugin_support.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

// Internal to the library: hidden from its dynamic symbol table.
#pragma GCC visibility push(hidden)

namespace fts_xapian {

inline const orion_host_api *g_host = nullptr;

constexpr size_t kMaxTermLength = 245;  // Xapian's limit for glass databases
constexpr const char *kCheckpointKey = "orion_checkpoint";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error to report at the ABI boundary: a status and a message.
using PluginFailure = orion_support::Failure;
using orion_support::write_error;

/// Runs `body`, turning every exception into a status and message: nothing crosses into C.
template <typename Body>
orion_status guarded(orion_error *err, const char *operation, Body &&body) noexcept {
  try {
    return body();
  } catch (const PluginFailure &f) {
    write_error(err, {"fts-xapian ", operation, ": ", f.message.c_str()});
    return f.status;
  } catch (const Xapian::DatabaseCorruptError &e) {
    write_error(err, {"fts-xapian ", operation, " failed: ", e.get_description().c_str(), "; clear the index or delete its directory"});
    return ORION_ERR_INTERNAL;
  } catch (const Xapian::RuntimeError &e) {  // I/O, locks, a modified database: retrying may help
    write_error(err, {"fts-xapian ", operation, " failed: ", e.get_description().c_str()});
    return ORION_ERR_UNAVAILABLE;
  } catch (const Xapian::Error &e) {  // LogicError: a bug here
    write_error(err, {"fts-xapian ", operation, " failed: ", e.get_description().c_str()});
    return ORION_ERR_INTERNAL;
  } catch (const std::bad_alloc &) {
    write_error(err, {"fts-xapian ", operation, " ran out of memory"});
    return ORION_ERR_RESOURCE_EXHAUSTED;
  } catch (const std::exception &e) {
    write_error(err, {"fts-xapian ", operation, " failed: ", e.what()});
    return ORION_ERR_INTERNAL;
  } catch (...) {
    write_error(err, {"fts-xapian ", operation, " failed with an unknown exception"});
    return ORION_ERR_INTERNAL;
  }
}

inline void host_log(orion_host_ctx *ctx, int32_t level, const std::string &message) noexcept {
  orion_support::host_log(g_host, ctx, level, message);
}

/// Copies a borrowed string; a NULL pointer with a non-zero length is the caller's bug.
inline std::string copy(orion_str s, const char *what) {
  if (s.len == 0) return std::string();
  if (s.ptr == nullptr) throw PluginFailure{ORION_ERR_INVALID_ARGUMENT, std::string(what) + " has a NULL pointer and a non-zero length"};
  return std::string(s.ptr, s.len);
}

// ---------------------------------------------------------------------------------------------
// Terms (terms.cpp)
// ---------------------------------------------------------------------------------------------

/// Q<ns>\x1f<id>, hashed (XQ) when too long: the unique term of one document.
std::string unique_term(const std::string &ns, int64_t id);
/// N<ns> (XN when too long): the boolean term every document of a namespace carries.
std::string namespace_term(const std::string &ns);
/// M<key>=<value>, escaped and hashed as the file comment of fts_xapian.cpp describes.
std::string metadata_term(const std::string &key, const std::string &value);
/// A document's id as its Xapian data, and back; false when the data is not one of ours.
std::string encode_id(int64_t id);
bool decode_id(const std::string &data, int64_t *id);
/// Whether TermGenerator (STEM_SOME) adds a Z-stem for this unstemmed term: only for terms whose
/// first character is a letter (the same test as Xapian's should_stem()).
bool generator_stems(const std::string &term);

// ---------------------------------------------------------------------------------------------
// Configuration (terms.cpp)
// ---------------------------------------------------------------------------------------------

struct Config {
  std::string path;
  bool has_path = false;
  double k1 = 1.2;
  double b = 0.75;
  std::string stemmer = "english";
  std::string stopwords = "english";
};

[[noreturn]] inline void config_error(const std::string &message) { throw PluginFailure{ORION_ERR_CONFIG, message}; }

/// A key or value for an error message: printable ASCII, at most 64 bytes.
inline std::string printable(const std::string &s) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= 64) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return out;
}

/// Reads the configuration: a JSON object of the keys at the top of fts_xapian.cpp, each at most once.
Config parse_config(orion_str text);

// ---------------------------------------------------------------------------------------------
// The index (store.cpp)
// ---------------------------------------------------------------------------------------------

/// A read-only handle on an on-disk database, used by one search at a time.
struct Reader {
  Xapian::Database db;
  uint64_t generation;
};

/// One open database, shared by the instances (of this image) that name the same path.
struct Store {
  std::string path;  // empty: in memory
  // glibc's rwlock prefers readers, so steady searches would starve writers. A writer holds
  // `turnstile` while it waits for and holds `lock`; a reader passes through `turnstile` first,
  // so no new search starts while a writer is waiting.
  std::mutex turnstile;
  std::shared_mutex lock;
  Xapian::WritableDatabase db;  // guarded by `lock` (exclusive)
  uint64_t generation = 0;      // commits so far; written under exclusive `lock`, read under shared
  std::mutex pool_lock;
  std::vector<std::unique_ptr<Reader>> pool;  // guarded by pool_lock

  bool on_disk() const { return !path.empty(); }

  void committed() { generation++; }

  /// Runs `body` in one transaction on the on-disk database: committed whole, or cancelled and
  /// rethrown. Call with `lock` held exclusively.
  template <typename Body>
  void transaction(Body body) {
    db.begin_transaction();
    try {
      body();
      db.commit_transaction();
    } catch (...) {
      try {
        db.cancel_transaction();
      } catch (...) {
      }
      throw;
    }
    committed();
  }

  std::unique_ptr<Reader> checkout() {  // call with `lock` held shared
    std::unique_ptr<Reader> reader;
    {
      std::lock_guard<std::mutex> guard(pool_lock);
      if (!pool.empty()) {
        reader = std::move(pool.back());
        pool.pop_back();
      }
    }
    if (!reader) {
      reader.reset(new Reader{Xapian::Database(path), generation});
    } else if (reader->generation != generation) {
      reader->db.reopen();
      reader->generation = generation;
    }
    return reader;
  }

  void checkin(std::unique_ptr<Reader> reader) {
    std::lock_guard<std::mutex> guard(pool_lock);
    pool.push_back(std::move(reader));
  }
};

/// Exclusive access to a store: writes, stats, and in-memory searches.
class ExclusiveLock {
 public:
  explicit ExclusiveLock(Store &store) : turnstile_(store.turnstile), lock_(store.lock) {}

 private:
  std::unique_lock<std::mutex> turnstile_;      // taken first, released last
  std::unique_lock<std::shared_mutex> lock_;
};

/// Shared access to a store: on-disk searches, each on its own reader.
class SharedLock {
 public:
  explicit SharedLock(Store &store) : lock_(store.lock, std::defer_lock) {
    { std::lock_guard<std::mutex> wait_for_writers(store.turnstile); }
    lock_.lock();
  }

 private:
  std::shared_lock<std::shared_mutex> lock_;
};

struct Instance {
  std::shared_ptr<Store> store;
  orion_host_ctx *ctx;
  double k1;
  double b;
  std::string stemmer;  // a Xapian language, or "" for no stemming
  // Read-only after create (SimpleStopper::operator() only reads its set), so searches share it.
  std::unique_ptr<Xapian::SimpleStopper> stopper;  // null: no stopwords
};

/// The store for `config`: in memory, or the on-disk database at its path, shared with the other
/// instances that name it. `description` says which, for the log.
std::shared_ptr<Store> open_store(const Config &config, std::string *description);
/// Drops an instance's hold on its store; the last one closes the database.
void release_store(std::shared_ptr<Store> store);

}  // namespace fts_xapian

#pragma GCC visibility pop
