// Chooses and opens the back-ends the configuration names. The only place
// (with tests) that names a concrete store.
#pragma once

#include "config/config.hpp"
#include "core/result.hpp"
#include "metrics/registry.hpp"
#include "storage/stores.hpp"

namespace bulwark {

// Relational data (users, roles, configuration): PostgreSQL when DB_HOST or
// DATABASE_URL is set, else the embedded SQLite database under data_dir.
// Sessions: Redis when REDIS_HOSTS or REDIS_SENTINELS is set (standalone,
// Cluster with CLUSTER_ENABLED, or Sentinel), written through to the
// relational store when BULWARK_SESSION_DURABILITY=redis+db; otherwise the
// relational store. kInvalidArgument (exit 2) for unusable settings,
// kUnavailable when a back-end cannot be reached at start.
// `metrics` (optional) receives the per-dependency series.
Result<Stores> OpenStores(const ServeConfig& config, metrics::Registry* metrics = nullptr);

// Applies pending migrations of the relational store; the version reached.
Result<int> MigrateStores(const ServeConfig& config);

// Path of the embedded database inside data_dir.
std::string EmbeddedDatabasePath(const ServeConfig& config);

}  // namespace bulwark
