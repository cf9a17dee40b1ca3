#include "storage/sqlite/sqlite_migrations.hpp"

#include <string>

#include "core/clock.hpp"

namespace bulwark::sqlite {

namespace {

constexpr char kCreateMigrationsTable[] = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
))sql";

// Sessions have no foreign key to users on purpose: in production they live
// in Redis, and the contract is the same for both back-ends.
constexpr char kMigration1[] = R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY NOT NULL,
  username TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  last_modified INTEGER NOT NULL
);
CREATE TABLE roles (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL UNIQUE,
  permissions TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE user_roles (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, role_id)
) WITHOUT ROWID;
CREATE INDEX user_roles_role_id ON user_roles(role_id);
CREATE TABLE configuration (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL,
  last_modified INTEGER NOT NULL
);
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL,
  username TEXT NOT NULL,
  roles TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  client TEXT NOT NULL DEFAULT '',
  ip TEXT NOT NULL DEFAULT '',
  user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);
)sql";

// Access-token signing keys and revoked token ids (issue 4). The partial
// unique indexes allow at most one active and one next key: the store's
// answer to replicas that bootstrap or rotate at the same moment.
constexpr char kMigration2[] = R"sql(
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY NOT NULL,
  algorithm TEXT NOT NULL,
  private_key TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
  created_at INTEGER NOT NULL,
  activated_at INTEGER NOT NULL DEFAULT 0,
  retired_at INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys(state) WHERE state = 'next';
CREATE TABLE revoked_jtis (
  jti TEXT PRIMARY KEY NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_jtis_expires_at ON revoked_jtis(expires_at);
)sql";

// Refresh-token families (issue 4): one row per family, rotated in place
// under BEGIN IMMEDIATE (storage/refresh_rotation.hpp has the rule).
constexpr char kMigration3[] = R"sql(
CREATE TABLE refresh_families (
  family_id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL DEFAULT '',
  client_id TEXT NOT NULL DEFAULT '',
  session_hash TEXT NOT NULL DEFAULT '',
  scope TEXT NOT NULL DEFAULT '',
  current_hash TEXT NOT NULL,
  previous_hash TEXT NOT NULL DEFAULT '',
  generation INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  rotated_at INTEGER NOT NULL,
  idle_expires_at INTEGER NOT NULL,
  absolute_expires_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_families_idle_expires_at ON refresh_families(idle_expires_at);
)sql";

// OAuth clients (issue 4). Grants and scopes are space-separated tokens.
constexpr char kMigration4[] = R"sql(
CREATE TABLE clients (
  id TEXT PRIMARY KEY NOT NULL,
  secret_hash TEXT NOT NULL,
  grants TEXT NOT NULL DEFAULT '',
  scopes TEXT NOT NULL DEFAULT '',
  certificate TEXT NOT NULL DEFAULT '',
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
)sql";

// Reads without taking the write lock, so replicas that are already up to
// date start without queueing behind a busy writer.
Result<int> CurrentVersion(Connection& conn) {
  {
    Result<Statement> exists = conn.Prepare(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (!exists.ok()) return exists.error();
    Result<bool> row = exists->Step();
    if (!row.ok()) return row.error();
    if (!*row || exists->Int(0) == 0) return 0;
  }
  Result<Statement> max = conn.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!max.ok()) return max.error();
  Result<bool> row = max->Step();
  if (!row.ok()) return row.error();
  return *row ? static_cast<int>(max->Int(0)) : 0;
}

Status ApplyOne(Connection& conn, const Migration& migration) {
  Transaction txn(conn);
  if (Status s = txn.Begin(); !s.ok()) return s;
  if (Status s = conn.Exec(kCreateMigrationsTable, "create schema_migrations"); !s.ok()) return s;
  // Another process may have applied it while we waited for the lock.
  Result<int> version = CurrentVersion(conn);
  if (!version.ok()) return version.error();
  if (*version >= migration.version) return txn.Commit();
  std::string context = "migration " + std::to_string(migration.version) + " " + migration.name;
  if (Status s = conn.Exec(migration.sql, context); !s.ok()) return s;
  {
    Result<Statement> insert = conn.Prepare(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)");
    if (!insert.ok()) return insert.error();
    insert->Bind(1, static_cast<int64_t>(migration.version));
    insert->Bind(2, migration.name);
    insert->Bind(3, SystemClock().NowUnix());
    if (Status s = insert->Run(); !s.ok()) return s;
  }
  return txn.Commit();
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "users roles configuration sessions", kMigration1},
      {2, "signing keys and revoked token ids", kMigration2},
      {3, "refresh token families", kMigration3},
      {4, "oauth clients", kMigration4},
  };
  return kMigrations;
}

Result<int> ApplyMigrations(Connection& conn) {
  Result<int> current = CurrentVersion(conn);
  if (!current.ok()) return current.error();
  for (const Migration& migration : Migrations()) {
    if (migration.version <= *current) continue;
    if (Status s = ApplyOne(conn, migration); !s.ok()) return s.error();
  }
  return CurrentVersion(conn);
}

}  // namespace bulwark::sqlite
