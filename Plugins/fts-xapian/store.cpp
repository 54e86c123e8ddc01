// fts-xapian: opening databases, shared by the instances that name one path.

#include "fts_xapian.hpp"

namespace fts_xapian {

namespace {

// Open on-disk stores by canonical path. Lookups, opens and the last release of a store happen
// under g_stores_lock, so a store is never opened twice or reopened while it is still closing.
std::mutex g_stores_lock;
std::map<std::string, std::weak_ptr<Store>> g_stores;

}  // namespace

std::shared_ptr<Store> open_store(const Config &config, std::string *description) {
  if (!config.has_path) {
    auto store = std::make_shared<Store>();
    store->db = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);
    *description = "opened in-memory index";
    return store;
  }
  if (config.path.empty()) config_error("'path' is empty; give a directory for the index, or omit 'path' for an in-memory index");
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(config.path, ec), ec);
  std::string key = ec ? config.path : canonical.string();
  std::lock_guard<std::mutex> guard(g_stores_lock);
  auto found = g_stores.find(key);
  if (found != g_stores.end()) {
    if (auto existing = found->second.lock()) {
      *description = "opened index at " + key + " (shared with another instance)";
      return existing;
    }
  }
  auto store = std::make_shared<Store>();
  store->path = key;
  try {
    store->db = Xapian::WritableDatabase(key, Xapian::DB_CREATE_OR_OPEN);
  } catch (const Xapian::DatabaseLockError &e) {
    throw PluginFailure{ORION_ERR_UNAVAILABLE, "the index at '" + key + "' is locked by another writer (" + e.get_description() +
                                                   "); stop the other process or give this instance another 'path'"};
  } catch (const Xapian::DatabaseError &e) {
    throw PluginFailure{ORION_ERR_CONFIG, "cannot open or create the index at '" + key + "': " + e.get_description() +
                                              "; set 'path' to a writable directory whose parent exists, or omit it for an in-memory index"};
  }
  g_stores[key] = store;
  *description = "opened index at " + key + " (" + std::to_string(store->db.get_doccount()) + " documents)";
  return store;
}

void release_store(std::shared_ptr<Store> store) {
  if (!store) return;
  if (!store->on_disk()) return;  // in memory: nothing shared, freed by the caller's reset
  std::lock_guard<std::mutex> guard(g_stores_lock);
  std::string key = store->path;
  store.reset();  // closes the database if this was the last instance using it
  auto found = g_stores.find(key);
  if (found != g_stores.end() && found->second.expired()) g_stores.erase(found);
}

}  // namespace fts_xapian
