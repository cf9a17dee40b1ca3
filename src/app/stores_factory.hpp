// Chooses and opens the back-ends the configuration names. The only place
// (with tests) that names a concrete store.
#pragma once

#include "config/config.hpp"
#include "core/result.hpp"
#include "storage/stores.hpp"

namespace bulwark {

// The embedded default (SQLite under data_dir) unless DB_HOST/DATABASE_URL or
// REDIS_* are set. kInvalidArgument (a configuration error, exit 2) for
// back-ends this build cannot use; kUnavailable when a store cannot be opened.
Result<Stores> OpenStores(const ServeConfig& config);

// Path of the embedded database inside data_dir.
std::string EmbeddedDatabasePath(const ServeConfig& config);

}  // namespace bulwark
