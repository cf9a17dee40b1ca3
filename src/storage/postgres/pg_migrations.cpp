#include "storage/postgres/pg_migrations.hpp"

#include <chrono>
#include <string>

#include "core/clock.hpp"

namespace bulwark::postgres {

namespace {

// Waiting for another replica's migration, or running a long one, may take
// longer than an ordinary statement.
constexpr std::chrono::milliseconds kMigrationTimeout{60000};

constexpr char kCreateMigrationsTable[] = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at bigint NOT NULL
))sql";

// Identifiers are text, compared verbatim (ids are UUID v4 text made by
// Bulwark; the store never interprets them). Names and keys use the "C"
// collation so ordering is byte-wise, as in SQLite, whatever the database
// locale. JSON documents are text, not jsonb, so they come back verbatim.
// Sessions have no foreign key to users: the same contract holds for Redis.
constexpr char kMigration1[] = R"sql(
CREATE TABLE users (
  id text COLLATE "C" PRIMARY KEY,
  username text COLLATE "C" NOT NULL UNIQUE,
  email text NOT NULL DEFAULT '',
  password_hash text NOT NULL,
  disabled boolean NOT NULL DEFAULT false,
  created_at bigint NOT NULL,
  last_modified bigint NOT NULL
);
CREATE TABLE roles (
  id text COLLATE "C" PRIMARY KEY,
  name text COLLATE "C" NOT NULL UNIQUE,
  permissions text NOT NULL DEFAULT '[]'
);
CREATE TABLE user_roles (
  user_id text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role_id text COLLATE "C" NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id ON user_roles (role_id);
CREATE TABLE configuration (
  key text COLLATE "C" PRIMARY KEY,
  value text NOT NULL,
  last_modified bigint NOT NULL
);
CREATE TABLE sessions (
  token_hash text COLLATE "C" PRIMARY KEY,
  user_id text COLLATE "C" NOT NULL,
  username text NOT NULL,
  roles text[] NOT NULL DEFAULT '{}',
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  client text NOT NULL DEFAULT '',
  ip text NOT NULL DEFAULT '',
  user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id ON sessions (user_id, created_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
)sql";

// Access-token signing keys and revoked token ids (issue 4). The partial
// unique indexes allow at most one active and one next key: the store's
// answer to replicas that bootstrap or rotate at the same moment.
constexpr char kMigration2[] = R"sql(
CREATE TABLE signing_keys (
  kid text COLLATE "C" PRIMARY KEY,
  algorithm text NOT NULL,
  private_key text NOT NULL,
  public_jwk text NOT NULL,
  state text NOT NULL CHECK (state IN ('next', 'active', 'retired')),
  created_at bigint NOT NULL,
  activated_at bigint NOT NULL DEFAULT 0,
  retired_at bigint NOT NULL DEFAULT 0,
  expires_at bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
CREATE TABLE revoked_jtis (
  jti text COLLATE "C" PRIMARY KEY,
  expires_at bigint NOT NULL
);
CREATE INDEX revoked_jtis_expires_at ON revoked_jtis (expires_at);
)sql";

// Refresh-token families (issue 4): one row per family, rotated by a
// compare-and-set on its generation (storage/refresh_rotation.hpp has the rule).
constexpr char kMigration3[] = R"sql(
CREATE TABLE refresh_families (
  family_id text COLLATE "C" PRIMARY KEY,
  user_id text NOT NULL DEFAULT '',
  client_id text NOT NULL DEFAULT '',
  session_hash text NOT NULL DEFAULT '',
  scope text NOT NULL DEFAULT '',
  current_hash text NOT NULL,
  previous_hash text NOT NULL DEFAULT '',
  generation bigint NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  rotated_at bigint NOT NULL,
  idle_expires_at bigint NOT NULL,
  absolute_expires_at bigint NOT NULL,
  revoked boolean NOT NULL DEFAULT false
);
CREATE INDEX refresh_families_idle_expires_at ON refresh_families (idle_expires_at);
)sql";

// OAuth clients (issue 4). Grants and scopes are space-separated tokens.
constexpr char kMigration4[] = R"sql(
CREATE TABLE clients (
  id text COLLATE "C" PRIMARY KEY,
  secret_hash text NOT NULL,
  grants text NOT NULL DEFAULT '',
  scopes text NOT NULL DEFAULT '',
  certificate text NOT NULL DEFAULT '',
  disabled boolean NOT NULL DEFAULT false,
  created_at bigint NOT NULL
);
)sql";

// Not prepared: schema_migrations may not exist yet when this is planned.
Result<int> CurrentVersion(Connection& conn) {
  Result<PgResult> exists =
      conn.Exec("SELECT to_regclass('schema_migrations') IS NOT NULL", kMigrationTimeout);
  if (!exists.ok()) return exists.error();
  if (exists->rows() != 1) return Error::Internal("postgres: cannot read the schema version");
  if (!exists->Bool(0, 0)) return 0;
  Result<PgResult> version =
      conn.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", kMigrationTimeout);
  if (!version.ok()) return version.error();
  if (version->rows() != 1) return Error::Internal("postgres: cannot read the schema version");
  return static_cast<int>(version->Int(0, 0));
}

Status ApplyOne(Connection& conn, const Migration& migration) {
  const std::string begin =
      "BEGIN; SET LOCAL statement_timeout = " + std::to_string(kMigrationTimeout.count()) +
      "; SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")";
  Result<PgResult> begun = conn.Exec(begin, kMigrationTimeout);
  auto rollback = [&](const Error& error) -> Status {
    if (!conn.broken() && !conn.idle()) {
      Result<PgResult> ignored = conn.Exec("ROLLBACK", kMigrationTimeout);
      (void)ignored;
    }
    return error;
  };
  if (!begun.ok()) return rollback(begun.error());
  if (Result<PgResult> r = conn.Exec(kCreateMigrationsTable, kMigrationTimeout); !r.ok()) {
    return rollback(r.error());
  }
  // Another replica may have applied it while we waited for the lock.
  Result<int> version = CurrentVersion(conn);
  if (!version.ok()) return rollback(version.error());
  if (*version < migration.version) {
    if (Result<PgResult> r = conn.Exec(migration.sql, kMigrationTimeout); !r.ok()) {
      Error error = r.error();
      if (error.code() != ErrorCode::kUnavailable) {
        error = Error::Internal("postgres: migration " + std::to_string(migration.version) + " (" +
                                migration.name + ") failed: " + error.message());
      }
      return rollback(error);
    }
    // Values are fixed (version, name) or a number: no user input is spliced.
    std::string insert = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
                         std::to_string(migration.version) + ", '" + migration.name + "', " +
                         std::to_string(SystemClock().NowUnix()) + ")";
    if (Result<PgResult> r = conn.Exec(insert, kMigrationTimeout); !r.ok()) {
      return rollback(r.error());
    }
  }
  if (Result<PgResult> r = conn.Exec("COMMIT", kMigrationTimeout); !r.ok()) {
    return rollback(r.error());
  }
  return Status::Ok();
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
  // Replicas that are up to date start without queueing behind the lock.
  Result<int> current = CurrentVersion(conn);
  if (!current.ok()) return current.error();
  for (const Migration& migration : Migrations()) {
    if (migration.version <= *current) continue;
    if (Status s = ApplyOne(conn, migration); !s.ok()) return s.error();
  }
  return CurrentVersion(conn);
}

}  // namespace bulwark::postgres
