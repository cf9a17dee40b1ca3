// The embedded default: users, roles, configuration and sessions in one
// SQLite database (WAL mode) under BULWARK_DATA_DIR. Several processes may
// share the file; each is a valid replica of the others.
#pragma once

#include <memory>
#include <string>

#include "core/result.hpp"
#include "storage/stores.hpp"

namespace bulwark {

struct SqliteOptions {
  std::string path;            // database file; its directory must exist
  int busy_timeout_ms = 5000;  // wait this long for another writer before kUnavailable
  int pool_size = 4;           // connections (one per concurrent caller)
};

// Opens (creating if needed) the database and applies pending migrations.
// kUnavailable / kInternal with a reason when it cannot.
Result<Stores> OpenSqliteStores(const SqliteOptions& options);

// Applies pending migrations only; returns the schema version reached.
Result<int> MigrateSqlite(const SqliteOptions& options);

}  // namespace bulwark
