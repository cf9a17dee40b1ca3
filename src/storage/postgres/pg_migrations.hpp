// Versioned, forward-only schema migrations for the PostgreSQL store.
// Internal to storage/postgres.
//
// To change the schema, append a Migration with the next version to the list
// in pg_migrations.cpp. Never edit or renumber one that was released: replicas
// and databases in the field have recorded it in schema_migrations.
#pragma once

#include <vector>

#include "core/result.hpp"
#include "storage/postgres/pg_connection.hpp"

namespace bulwark::postgres {

struct Migration {
  int version;       // 1, 2, 3, ... in order
  const char* name;  // recorded in schema_migrations
  const char* sql;   // fixed DDL, may hold several statements; runs inside a transaction
};

// Every migration, in ascending version order.
const std::vector<Migration>& Migrations();

// The advisory lock key that serialises migrations database-wide.
inline constexpr long long kMigrationLockKey = 0x42756c7761726bLL;  // "Bulwark"

// Applies the pending migrations, each in its own transaction that first takes
// pg_advisory_xact_lock(kMigrationLockKey) and re-reads the version, so
// replicas migrating at once apply each migration exactly once (the others
// wait, then find nothing to do). Tables go to the first schema of the
// connection's search_path. Returns the version reached (may be newer than
// this binary knows, after a newer replica migrated).
Result<int> ApplyMigrations(Connection& conn);

}  // namespace bulwark::postgres
