// Versioned, forward-only schema migrations for the embedded SQLite store.
// Internal to storage/sqlite.
#pragma once

#include <vector>

#include "core/result.hpp"
#include "storage/sqlite/sqlite_connection.hpp"

namespace bulwark::sqlite {

struct Migration {
  int version;       // 1, 2, 3, ... in order; never renumber or edit a released one
  const char* name;  // recorded in schema_migrations
  const char* sql;   // fixed DDL, may hold several statements
};

// Every migration, in ascending version order.
const std::vector<Migration>& Migrations();

// Applies the pending migrations, each in its own BEGIN IMMEDIATE transaction
// that re-reads the version first, so several processes migrating the same
// file at once apply each migration exactly once. Returns the version reached
// (which may be newer than this binary knows, after a newer replica migrated).
Result<int> ApplyMigrations(Connection& conn);

}  // namespace bulwark::sqlite
