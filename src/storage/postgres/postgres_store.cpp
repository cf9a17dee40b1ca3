#include "storage/postgres/postgres_store.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/postgres/pg_array.hpp"
#include "storage/postgres/pg_connection.hpp"
#include "storage/postgres/pg_migrations.hpp"
#include "storage/postgres/postgres_store_impl.hpp"
#include "storage/refresh_rotation.hpp"

namespace bulwark {

using postgres::Connection;
using postgres::ConnectionPool;
using postgres::FailureKind;
using postgres::PgResult;
using Params = std::vector<std::string>;

namespace {

// --- SQL (parameters only; no value is ever spliced into the text) -----------

#define BULWARK_USER_COLUMNS \
  "id, username, email, password_hash, disabled, created_at, last_modified"
#define BULWARK_SESSION_COLUMNS \
  "token_hash, user_id, username, roles, created_at, expires_at, client, ip, user_agent"

constexpr char kInsertUser[] =
    "INSERT INTO users (" BULWARK_USER_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr char kSelectUserById[] = "SELECT " BULWARK_USER_COLUMNS " FROM users WHERE id = $1";
constexpr char kSelectUserByUsername[] =
    "SELECT " BULWARK_USER_COLUMNS " FROM users WHERE username = $1";
constexpr char kSelectUsers[] =
    "SELECT " BULWARK_USER_COLUMNS " FROM users ORDER BY username COLLATE \"C\"";
constexpr char kUpdatePasswordHash[] =
    "UPDATE users SET password_hash = $2, last_modified = $3 WHERE id = $1";
constexpr char kUpdateDisabled[] =
    "UPDATE users SET disabled = $2, last_modified = $3 WHERE id = $1";
constexpr char kUpdateEmail[] = "UPDATE users SET email = $2, last_modified = $3 WHERE id = $1";
// user_roles rows go with it (ON DELETE CASCADE), in the same statement.
constexpr char kDeleteUser[] = "DELETE FROM users WHERE id = $1";

constexpr char kInsertRole[] = "INSERT INTO roles (id, name, permissions) VALUES ($1, $2, $3)";
constexpr char kSelectRoleByName[] = "SELECT id, name, permissions FROM roles WHERE name = $1";
constexpr char kSelectRoles[] =
    "SELECT id, name, permissions FROM roles ORDER BY name COLLATE \"C\"";
constexpr char kDeleteRole[] = "DELETE FROM roles WHERE name = $1";
// One statement each: the existence checks and the change see one snapshot,
// and FOR KEY SHARE keeps the user and role from being deleted meanwhile.
// Data-modifying CTEs always run to completion, read or not.
constexpr char kGrant[] =
    "WITH u AS (SELECT id FROM users WHERE id = $1 FOR KEY SHARE), "
    "r AS (SELECT id FROM roles WHERE name = $2 FOR KEY SHARE), "
    "changed AS (INSERT INTO user_roles (user_id, role_id) SELECT u.id, r.id FROM u CROSS JOIN r "
    "ON CONFLICT DO NOTHING RETURNING 1) "
    "SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM r)";
constexpr char kRevoke[] =
    "WITH u AS (SELECT id FROM users WHERE id = $1), "
    "r AS (SELECT id FROM roles WHERE name = $2), "
    "changed AS (DELETE FROM user_roles WHERE user_id IN (SELECT id FROM u) "
    "AND role_id IN (SELECT id FROM r) RETURNING 1) "
    "SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM r)";
constexpr char kSelectUserRoles[] =
    "SELECT r.name FROM user_roles AS ur JOIN roles AS r ON r.id = ur.role_id "
    "WHERE ur.user_id = $1 ORDER BY r.name COLLATE \"C\"";

constexpr char kSelectConfig[] =
    "SELECT key, value, last_modified FROM configuration WHERE key = $1";
constexpr char kUpsertConfig[] =
    "INSERT INTO configuration (key, value, last_modified) VALUES ($1, $2, $3) "
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, last_modified = "
    "EXCLUDED.last_modified";
constexpr char kDeleteConfig[] = "DELETE FROM configuration WHERE key = $1";
constexpr char kSelectConfigs[] =
    "SELECT key, value, last_modified FROM configuration ORDER BY key COLLATE \"C\"";

constexpr char kInsertSession[] = "INSERT INTO sessions (" BULWARK_SESSION_COLUMNS
                                  ") VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9)";
// One statement, so one round trip and one commit: a data-modifying CTE runs
// even though nothing reads it, and any conflict fails the whole statement.
constexpr char kInsertLogin[] =
    "WITH s AS (INSERT INTO sessions (" BULWARK_SESSION_COLUMNS
    ") VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9)) "
    "INSERT INTO refresh_families (family_id, user_id, client_id, session_hash, scope, "
    "current_hash, previous_hash, generation, created_at, rotated_at, idle_expires_at, "
    "absolute_expires_at, revoked) VALUES ($10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
    "$20, $21, $22)";
constexpr char kSelectSession[] =
    "SELECT " BULWARK_SESSION_COLUMNS " FROM sessions WHERE token_hash = $1 AND expires_at > $2";
constexpr char kTouchSession[] =
    "UPDATE sessions SET expires_at = $2 WHERE token_hash = $1 AND expires_at > $3";
constexpr char kDeleteSession[] = "DELETE FROM sessions WHERE token_hash = $1";
constexpr char kSelectUserSessions[] = "SELECT " BULWARK_SESSION_COLUMNS
                                       " FROM sessions WHERE user_id = $1 AND expires_at > $2 "
                                       "ORDER BY created_at, token_hash COLLATE \"C\"";
constexpr char kDeleteUserSessions[] = "DELETE FROM sessions WHERE user_id = $1";
// Purges in batches, each its own short statement, so a large purge never
// holds many row locks at once; SKIP LOCKED lets replicas purge side by side.
constexpr char kPurgeExpiredBatch[] =
    "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
    "WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";
constexpr int kPurgeBatchSize = 500;

#define BULWARK_KEY_COLUMNS                                                                \
  "kid, algorithm, private_key, public_jwk, state, created_at, activated_at, retired_at, " \
  "expires_at"
constexpr char kInsertSigningKey[] = "INSERT INTO signing_keys (" BULWARK_KEY_COLUMNS
                                     ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
constexpr char kSelectSigningKeys[] =
    "SELECT " BULWARK_KEY_COLUMNS " FROM signing_keys ORDER BY created_at, kid COLLATE \"C\"";
constexpr char kSelectSigningKey[] =
    "SELECT " BULWARK_KEY_COLUMNS " FROM signing_keys WHERE kid = $1";
#undef BULWARK_KEY_COLUMNS
// Compare-and-set on the state in one statement (the row lock serialises
// racing replicas; the loser's WHERE no longer matches). The second column
// tells "no such kid" from "in another state".
constexpr char kUpdateSigningKeyState[] =
    "WITH changed AS (UPDATE signing_keys SET state = $3::text, "
    "activated_at = CASE WHEN $3::text = 'active' THEN $4::bigint ELSE activated_at END, "
    "retired_at = CASE WHEN $3::text = 'retired' THEN $4::bigint ELSE retired_at END, "
    "expires_at = CASE WHEN $3::text = 'retired' THEN $5::bigint ELSE expires_at END "
    "WHERE kid = $1 AND state = $2::text RETURNING 1) "
    "SELECT EXISTS (SELECT 1 FROM changed), EXISTS (SELECT 1 FROM signing_keys WHERE kid = $1)";
constexpr char kDeleteSigningKey[] = "DELETE FROM signing_keys WHERE kid = $1";

constexpr char kUpsertRevokedJti[] =
    "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) "
    "ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_jtis.expires_at, "
    "EXCLUDED.expires_at)";
constexpr char kSelectRevokedJti[] =
    "SELECT EXISTS (SELECT 1 FROM revoked_jtis WHERE jti = $1 AND expires_at > $2)";
constexpr char kPurgeRevokedJtis[] = "DELETE FROM revoked_jtis WHERE expires_at <= $1";

constexpr char kPing[] = "SELECT 1";

#undef BULWARK_USER_COLUMNS
#undef BULWARK_SESSION_COLUMNS

std::string Num(int64_t value) { return std::to_string(value); }
std::string Flag(bool value) { return value ? "true" : "false"; }

// --- Row mapping --------------------------------------------------------------

Result<User> ReadUser(const PgResult& r, int row) {
  User user;
  user.id = r.Text(row, 0);
  user.username = r.Text(row, 1);
  user.email = r.Text(row, 2);
  user.password_hash = r.Text(row, 3);
  user.disabled = r.Bool(row, 4);
  user.created_at = r.Int(row, 5);
  user.last_modified = r.Int(row, 6);
  return user;
}

Result<Role> ReadRole(const PgResult& r, int row) {
  Role role;
  role.id = r.Text(row, 0);
  role.name = r.Text(row, 1);
  role.permissions_json = r.Text(row, 2);
  return role;
}

Result<ConfigEntry> ReadConfig(const PgResult& r, int row) {
  ConfigEntry entry;
  entry.key = r.Text(row, 0);
  entry.value_json = r.Text(row, 1);
  entry.last_modified = r.Int(row, 2);
  return entry;
}

Result<Session> ReadSession(const PgResult& r, int row) {
  Session session;
  session.token_hash = r.Text(row, 0);
  session.user_id = r.Text(row, 1);
  session.username = r.Text(row, 2);
  std::optional<std::vector<std::string>> roles = postgres::DecodeTextArray(r.Text(row, 3));
  if (!roles) return Error::Internal("postgres: sessions.roles is not an array of strings");
  session.roles = std::move(*roles);
  session.created_at = r.Int(row, 4);
  session.expires_at = r.Int(row, 5);
  session.client = r.Text(row, 6);
  session.ip = r.Text(row, 7);
  session.user_agent = r.Text(row, 8);
  return session;
}

Result<SigningKeyRecord> ReadSigningKey(const PgResult& r, int row) {
  SigningKeyRecord key;
  key.kid = r.Text(row, 0);
  key.algorithm = r.Text(row, 1);
  key.private_key = r.Text(row, 2);
  key.public_jwk = r.Text(row, 3);
  std::optional<KeyState> state = ParseKeyState(r.Text(row, 4));
  if (!state) return Error::Internal("postgres: signing_keys.state is not a key state");
  key.state = *state;
  key.created_at = r.Int(row, 5);
  key.activated_at = r.Int(row, 6);
  key.retired_at = r.Int(row, 7);
  key.expires_at = r.Int(row, 8);
  return key;
}

Result<std::string> ReadName(const PgResult& r, int row) { return r.Text(row, 0); }

// A query expected to return at most one row; kNotFound (with `what`) for none.
template <typename T>
Result<T> QueryOne(Connection& conn, const char* sql, const char* what, const Params& params,
                   Result<T> (*read)(const PgResult&, int)) {
  Result<PgResult> r = conn.Query(sql, params);
  if (!r.ok()) return r.error();
  if (r->rows() == 0) return Error::NotFound(std::string(what) + " not found");
  return read(*r, 0);
}

template <typename T>
Result<std::vector<T>> QueryAll(Connection& conn, const char* sql, const Params& params,
                                Result<T> (*read)(const PgResult&, int)) {
  Result<PgResult> r = conn.Query(sql, params);
  if (!r.ok()) return r.error();
  std::vector<T> rows;
  rows.reserve(static_cast<size_t>(r->rows()));
  for (int row = 0; row < r->rows(); ++row) {
    Result<T> value = read(*r, row);
    if (!value.ok()) return value.error();
    rows.push_back(std::move(value).value());
  }
  return rows;
}

// A write; returns the number of rows it changed.
Result<int> Write(Connection& conn, const char* sql, const Params& params) {
  Result<PgResult> r = conn.Query(sql, params);
  if (!r.ok()) return r.error();
  return r->Affected();
}

Status WriteNone(Connection& conn, const char* sql, const Params& params) {
  Result<int> changed = Write(conn, sql, params);
  if (!changed.ok()) return changed.error();
  return Status::Ok();
}

// A write that must change exactly one row; kNotFound (with `what`) otherwise.
Status WriteOne(Connection& conn, const char* sql, const char* what, const Params& params) {
  Result<int> changed = Write(conn, sql, params);
  if (!changed.ok()) return changed.error();
  if (*changed == 0) return Error::NotFound(std::string(what) + " not found");
  return Status::Ok();
}

Status CheckOptions(const PostgresOptions& options) {
  if (options.pool_size < 1) {
    return Error::InvalidArgument("postgres: pool_size must be at least 1");
  }
  if (options.connect_timeout.count() <= 0 || options.statement_timeout.count() <= 0 ||
      options.acquire_timeout.count() <= 0) {
    return Error::InvalidArgument("postgres: timeouts must be positive");
  }
  return Status::Ok();
}

Result<postgres::ConnectSettings> Settings(const PostgresOptions& options) {
  if (Status s = CheckOptions(options); !s.ok()) return s.error();
  return postgres::MakeConnectSettings(options.conninfo, options.connect_timeout,
                                       options.statement_timeout);
}

}  // namespace

PostgresStore::PostgresStore(std::unique_ptr<ConnectionPool> pool,
                             resilience::BreakerOptions breaker, metrics::Registry* metrics)
    : pool_(std::move(pool)), breaker_(breaker) {
  if (metrics != nullptr) {
    metrics_.emplace(*metrics, "postgres");
    metrics_->SetBreakerState(breaker_.state());
  }
}

template <typename Fn>
auto PostgresStore::Run(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
  auto start = std::chrono::steady_clock::now();
  if (!breaker_.Allow(start)) {
    if (metrics_) {
      metrics_->ObserveRejected();
      metrics_->SetBreakerState(breaker_.state());
    }
    return Error::Unavailable("postgres: circuit open");
  }
  Result<ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) {
    Report(true, std::chrono::steady_clock::now() - start);
    return lease.error();
  }
  auto result = fn(**lease);
  Report(!result.ok() && (*lease)->last_failure() == FailureKind::kDependency,
         std::chrono::steady_clock::now() - start);
  return result;
}

void PostgresStore::Report(bool dependency_failure, std::chrono::steady_clock::duration latency) {
  if (dependency_failure) {
    breaker_.RecordFailure();
  } else {
    breaker_.RecordSuccess();
  }
  if (metrics_) {
    if (dependency_failure) {
      metrics_->ObserveError(latency);
    } else {
      metrics_->ObserveOk(latency);
    }
    metrics_->SetBreakerState(breaker_.state());
  }
}

// --- UserStore ----------------------------------------------------------------

Status PostgresStore::CreateUser(const User& user) {
  return Run([&](Connection& conn) {
    return WriteNone(conn, kInsertUser,
                     {user.id, user.username, user.email, user.password_hash, Flag(user.disabled),
                      Num(user.created_at), Num(user.last_modified)});
  });
}

Result<User> PostgresStore::GetUserById(const std::string& id) {
  return Run(
      [&](Connection& conn) { return QueryOne(conn, kSelectUserById, "user", {id}, ReadUser); });
}

Result<User> PostgresStore::GetUserByUsername(const std::string& username) {
  return Run([&](Connection& conn) {
    return QueryOne(conn, kSelectUserByUsername, "user", {username}, ReadUser);
  });
}

Result<std::vector<User>> PostgresStore::ListUsers() {
  return Run([&](Connection& conn) { return QueryAll(conn, kSelectUsers, {}, ReadUser); });
}

Status PostgresStore::UpdatePasswordHash(const std::string& id, const std::string& password_hash,
                                         int64_t now) {
  return Run([&](Connection& conn) {
    return WriteOne(conn, kUpdatePasswordHash, "user", {id, password_hash, Num(now)});
  });
}

Status PostgresStore::SetDisabled(const std::string& id, bool disabled, int64_t now) {
  return Run([&](Connection& conn) {
    return WriteOne(conn, kUpdateDisabled, "user", {id, Flag(disabled), Num(now)});
  });
}

Status PostgresStore::UpdateEmail(const std::string& id, const std::string& email, int64_t now) {
  return Run([&](Connection& conn) {
    return WriteOne(conn, kUpdateEmail, "user", {id, email, Num(now)});
  });
}

Status PostgresStore::DeleteUser(const std::string& id) {
  return Run([&](Connection& conn) { return WriteOne(conn, kDeleteUser, "user", {id}); });
}

// --- RoleStore ----------------------------------------------------------------

Status PostgresStore::CreateRole(const Role& role) {
  return Run([&](Connection& conn) {
    return WriteNone(conn, kInsertRole, {role.id, role.name, role.permissions_json});
  });
}

Result<Role> PostgresStore::GetRoleByName(const std::string& name) {
  return Run([&](Connection& conn) {
    return QueryOne(conn, kSelectRoleByName, "role", {name}, ReadRole);
  });
}

Result<std::vector<Role>> PostgresStore::ListRoles() {
  return Run([&](Connection& conn) { return QueryAll(conn, kSelectRoles, {}, ReadRole); });
}

Status PostgresStore::DeleteRole(const std::string& name) {
  return Run([&](Connection& conn) { return WriteOne(conn, kDeleteRole, "role", {name}); });
}

Status PostgresStore::ChangeGrant(const char* sql, const std::string& user_id,
                                  const std::string& role_name) {
  return Run([&](Connection& conn) -> Status {
    Result<PgResult> r = conn.Query(sql, {user_id, role_name});
    if (!r.ok()) return r.error();
    if (r->rows() != 1) return Error::Internal("postgres: grant returned no row");
    if (!r->Bool(0, 0)) return Error::NotFound("user not found");
    if (!r->Bool(0, 1)) return Error::NotFound("role not found");
    return Status::Ok();
  });
}

Status PostgresStore::GrantRole(const std::string& user_id, const std::string& role_name) {
  return ChangeGrant(kGrant, user_id, role_name);
}

Status PostgresStore::RevokeRole(const std::string& user_id, const std::string& role_name) {
  return ChangeGrant(kRevoke, user_id, role_name);
}

Result<std::vector<std::string>> PostgresStore::ListUserRoles(const std::string& user_id) {
  return Run(
      [&](Connection& conn) { return QueryAll(conn, kSelectUserRoles, {user_id}, ReadName); });
}

// --- ConfigStore --------------------------------------------------------------

Result<ConfigEntry> PostgresStore::GetConfig(const std::string& key) {
  return Run([&](Connection& conn) {
    return QueryOne(conn, kSelectConfig, "configuration key", {key}, ReadConfig);
  });
}

Status PostgresStore::PutConfig(const ConfigEntry& entry) {
  return Run([&](Connection& conn) {
    return WriteNone(conn, kUpsertConfig, {entry.key, entry.value_json, Num(entry.last_modified)});
  });
}

Status PostgresStore::DeleteConfig(const std::string& key) {
  return Run(
      [&](Connection& conn) { return WriteOne(conn, kDeleteConfig, "configuration key", {key}); });
}

Result<std::vector<ConfigEntry>> PostgresStore::ListConfig() {
  return Run([&](Connection& conn) { return QueryAll(conn, kSelectConfigs, {}, ReadConfig); });
}

// --- SessionStore -------------------------------------------------------------

Status PostgresStore::CreateSession(const Session& s) {
  return Run([&](Connection& conn) {
    return WriteNone(conn, kInsertSession,
                     {s.token_hash, s.user_id, s.username, postgres::EncodeTextArray(s.roles),
                      Num(s.created_at), Num(s.expires_at), s.client, s.ip, s.user_agent});
  });
}

Result<Session> PostgresStore::GetSession(const std::string& token_hash, int64_t now) {
  return Run([&](Connection& conn) {
    return QueryOne(conn, kSelectSession, "session", {token_hash, Num(now)}, ReadSession);
  });
}

Status PostgresStore::TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) {
  return Run([&](Connection& conn) {
    return WriteOne(conn, kTouchSession, "session", {token_hash, Num(expires_at), Num(now)});
  });
}

Status PostgresStore::DeleteSession(const std::string& token_hash) {
  return Run([&](Connection& conn) { return WriteNone(conn, kDeleteSession, {token_hash}); });
}

Result<std::vector<Session>> PostgresStore::ListUserSessions(const std::string& user_id,
                                                             int64_t now) {
  return Run([&](Connection& conn) {
    return QueryAll(conn, kSelectUserSessions, {user_id, Num(now)}, ReadSession);
  });
}

Result<int> PostgresStore::DeleteUserSessions(const std::string& user_id) {
  return Run([&](Connection& conn) { return Write(conn, kDeleteUserSessions, {user_id}); });
}

Result<int> PostgresStore::PurgeExpired(int64_t now) {
  return Run([&](Connection& conn) -> Result<int> {
    int total = 0;
    for (;;) {
      Result<int> changed = Write(conn, kPurgeExpiredBatch, {Num(now), Num(kPurgeBatchSize)});
      if (!changed.ok()) return changed.error();
      total += *changed;
      if (*changed < kPurgeBatchSize) return total;
    }
  });
}

// --- SigningKeyStore ----------------------------------------------------------

Status PostgresStore::CreateSigningKey(const SigningKeyRecord& k) {
  return Run([&](Connection& conn) {
    return WriteNone(
        conn, kInsertSigningKey,
        {k.kid, k.algorithm, k.private_key, k.public_jwk, KeyStateName(k.state), Num(k.created_at),
         Num(k.activated_at), Num(k.retired_at), Num(k.expires_at)});
  });
}

Result<std::vector<SigningKeyRecord>> PostgresStore::ListSigningKeys() {
  return Run(
      [&](Connection& conn) { return QueryAll(conn, kSelectSigningKeys, {}, ReadSigningKey); });
}

Result<SigningKeyRecord> PostgresStore::GetSigningKey(const std::string& kid) {
  return Run([&](Connection& conn) {
    return QueryOne(conn, kSelectSigningKey, "signing key", {kid}, ReadSigningKey);
  });
}

Result<bool> PostgresStore::UpdateSigningKeyState(const std::string& kid, KeyState from,
                                                  KeyState to, int64_t now, int64_t expires_at) {
  return Run([&](Connection& conn) -> Result<bool> {
    Result<PgResult> r =
        conn.Query(kUpdateSigningKeyState,
                   {kid, KeyStateName(from), KeyStateName(to), Num(now), Num(expires_at)});
    if (!r.ok()) return r.error();
    if (r->rows() != 1) return Error::Internal("postgres: key state update returned no row");
    if (r->Bool(0, 0)) return true;
    if (!r->Bool(0, 1)) return Error::NotFound("signing key not found");
    return false;
  });
}

Status PostgresStore::DeleteSigningKey(const std::string& kid) {
  return Run([&](Connection& conn) { return WriteNone(conn, kDeleteSigningKey, {kid}); });
}

// --- RevocationStore ----------------------------------------------------------

Status PostgresStore::RevokeJti(const std::string& jti, int64_t expires_at) {
  return Run([&](Connection& conn) {
    return WriteNone(conn, kUpsertRevokedJti, {jti, Num(expires_at)});
  });
}

Result<bool> PostgresStore::IsJtiRevoked(const std::string& jti, int64_t now) {
  return Run([&](Connection& conn) -> Result<bool> {
    Result<PgResult> r = conn.Query(kSelectRevokedJti, {jti, Num(now)});
    if (!r.ok()) return r.error();
    if (r->rows() != 1) return Error::Internal("postgres: revocation lookup returned no row");
    return r->Bool(0, 0);
  });
}

Result<int> PostgresStore::PurgeExpiredRevocations(int64_t now) {
  return Run([&](Connection& conn) { return Write(conn, kPurgeRevokedJtis, {Num(now)}); });
}

// --- HealthProbe --------------------------------------------------------------

Status PostgresStore::Ping() {
  return Run([&](Connection& conn) -> Status {
    Result<PgResult> r = conn.Query(kPing, {});
    if (!r.ok()) return r.error();
    return Status::Ok();
  });
}

// --- Entry points -------------------------------------------------------------

Result<Stores> OpenPostgresStores(const PostgresOptions& options) {
  Result<postgres::ConnectSettings> settings = Settings(options);
  if (!settings.ok()) return settings.error();
  auto pool = std::make_unique<ConnectionPool>(std::move(settings).value(), options.pool_size,
                                               options.acquire_timeout);
  {
    Result<ConnectionPool::Lease> lease = pool->Acquire();
    if (!lease.ok()) return lease.error();
    Result<int> version = postgres::ApplyMigrations(**lease);
    if (!version.ok()) return version.error();
  }
  auto store = std::make_shared<PostgresStore>(std::move(pool), options.breaker, options.metrics);
  Stores stores;
  stores.users = store;
  stores.roles = store;
  stores.config = store;
  stores.sessions = store;
  stores.signing_keys = store;
  stores.revocations = store;
  stores.refresh_tokens = store;
  stores.logins = store;
  stores.clients = store;
  stores.database = store;
  stores.session_backend = store;
  stores.database_kind = "postgres";
  stores.session_kind = "postgres";
  stores.session_durability = "postgres";
  return stores;
}

Result<int> MigratePostgres(const PostgresOptions& options) {
  Result<postgres::ConnectSettings> settings = Settings(options);
  if (!settings.ok()) return settings.error();
  Result<std::unique_ptr<Connection>> conn = Connection::Open(*settings);
  if (!conn.ok()) return conn.error();
  return postgres::ApplyMigrations(**conn);
}

// --- RefreshTokenStore ----------------------------------------------------------
// Rotation reads the row, applies storage/refresh_rotation's rule and writes it
// back only if its generation is unchanged (compare-and-set); a concurrent
// rotation makes the write miss and the whole step is retried on fresh data.

namespace {

constexpr char kInsertFamily[] =
    "INSERT INTO refresh_families (family_id, user_id, client_id, session_hash, scope, "
    "current_hash, previous_hash, generation, created_at, rotated_at, idle_expires_at, "
    "absolute_expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
    "$13)";
constexpr char kSelectFamily[] =
    "SELECT family_id, user_id, client_id, session_hash, scope, current_hash, previous_hash, "
    "generation, created_at, rotated_at, idle_expires_at, absolute_expires_at, revoked "
    "FROM refresh_families WHERE family_id = $1";
constexpr char kCasFamily[] =
    "UPDATE refresh_families SET current_hash = $3, previous_hash = $4, generation = $5, "
    "rotated_at = $6, idle_expires_at = $7, revoked = $8 "
    "WHERE family_id = $1 AND generation = $2 AND NOT revoked";
constexpr char kRevokeFamily[] = "UPDATE refresh_families SET revoked = true WHERE family_id = $1";
constexpr int kRotateAttempts = 8;

Result<RefreshFamily> ReadFamily(const PgResult& r, int row) {
  RefreshFamily f;
  f.family_id = r.Text(row, 0);
  f.user_id = r.Text(row, 1);
  f.client_id = r.Text(row, 2);
  f.session_hash = r.Text(row, 3);
  f.scope = r.Text(row, 4);
  f.current_hash = r.Text(row, 5);
  f.previous_hash = r.Text(row, 6);
  f.generation = r.Int(row, 7);
  f.created_at = r.Int(row, 8);
  f.rotated_at = r.Int(row, 9);
  f.idle_expires_at = r.Int(row, 10);
  f.absolute_expires_at = r.Int(row, 11);
  f.revoked = r.Bool(row, 12);
  return f;
}

}  // namespace

Status PostgresStore::CreateFamily(const RefreshFamily& f) {
  return Run([&](Connection& conn) {
    return WriteNone(
        conn, kInsertFamily,
        {f.family_id, f.user_id, f.client_id, f.session_hash, f.scope, f.current_hash,
         f.previous_hash, Num(f.generation), Num(f.created_at), Num(f.rotated_at),
         Num(f.idle_expires_at), Num(f.absolute_expires_at), f.revoked ? "true" : "false"});
  });
}

// --- LoginStore -------------------------------------------------------------------

Status PostgresStore::CreateLogin(const Session& s, const RefreshFamily& f) {
  return Run([&](Connection& conn) {
    return WriteNone(conn, kInsertLogin,
                     {s.token_hash,
                      s.user_id,
                      s.username,
                      postgres::EncodeTextArray(s.roles),
                      Num(s.created_at),
                      Num(s.expires_at),
                      s.client,
                      s.ip,
                      s.user_agent,
                      f.family_id,
                      f.user_id,
                      f.client_id,
                      f.session_hash,
                      f.scope,
                      f.current_hash,
                      f.previous_hash,
                      Num(f.generation),
                      Num(f.created_at),
                      Num(f.rotated_at),
                      Num(f.idle_expires_at),
                      Num(f.absolute_expires_at),
                      f.revoked ? "true" : "false"});
  });
}

Result<RefreshFamily> PostgresStore::GetFamily(const std::string& family_id, int64_t now) {
  return Run([&](Connection& conn) -> Result<RefreshFamily> {
    Result<RefreshFamily> f =
        QueryOne(conn, kSelectFamily, "refresh family", {family_id}, ReadFamily);
    if (f.ok() && !RefreshFamilyLive(*f, now)) return Error::NotFound("refresh family not found");
    return f;
  });
}

Result<RotateResult> PostgresStore::Rotate(const RotateRequest& request) {
  return Run([&](Connection& conn) -> Result<RotateResult> {
    for (int attempt = 0; attempt < kRotateAttempts; ++attempt) {
      Result<RefreshFamily> f =
          QueryOne(conn, kSelectFamily, "refresh family", {request.family_id}, ReadFamily);
      if (!f.ok()) return f.error();
      if (!RefreshFamilyLive(*f, request.now)) {
        return Error::NotFound("refresh family not found");
      }
      const int64_t seen_generation = f->generation;
      RotateOutcome outcome = ApplyRotation(*f, request);
      if (outcome == RotateOutcome::kWrongClient) return RotateResult{outcome, std::move(*f)};
      Result<int> changed = Write(conn, kCasFamily,
                                  {f->family_id, Num(seen_generation), f->current_hash,
                                   f->previous_hash, Num(f->generation), Num(f->rotated_at),
                                   Num(f->idle_expires_at), f->revoked ? "true" : "false"});
      if (!changed.ok()) return changed.error();
      if (*changed == 1) return RotateResult{outcome, std::move(*f)};
    }
    return Error::Unavailable("postgres: refresh family kept changing under rotation");
  });
}

Status PostgresStore::RevokeFamily(const std::string& family_id) {
  return Run([&](Connection& conn) { return WriteNone(conn, kRevokeFamily, {family_id}); });
}

// --- ClientStore ----------------------------------------------------------------

namespace {

constexpr char kInsertClient[] =
    "INSERT INTO clients (id, secret_hash, grants, scopes, certificate, disabled, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr char kSelectClient[] =
    "SELECT id, secret_hash, grants, scopes, certificate, disabled, created_at FROM clients "
    "WHERE id = $1";
constexpr char kSelectClients[] =
    "SELECT id, secret_hash, grants, scopes, certificate, disabled, created_at FROM clients "
    "ORDER BY id";
constexpr char kDeleteClient[] = "DELETE FROM clients WHERE id = $1";

Result<OAuthClient> ReadClient(const PgResult& r, int row) {
  OAuthClient c;
  c.id = r.Text(row, 0);
  c.secret_hash = r.Text(row, 1);
  c.grants = SplitTokens(r.Text(row, 2));
  c.scopes = SplitTokens(r.Text(row, 3));
  c.certificate = r.Text(row, 4);
  c.disabled = r.Bool(row, 5);
  c.created_at = r.Int(row, 6);
  return c;
}

}  // namespace

Status PostgresStore::CreateClient(const OAuthClient& c) {
  if (Status s = CheckClientTokens(c); !s.ok()) return s;
  return Run([&](Connection& conn) {
    return WriteNone(conn, kInsertClient,
                     {c.id, c.secret_hash, JoinTokens(c.grants), JoinTokens(c.scopes),
                      c.certificate, c.disabled ? "true" : "false", Num(c.created_at)});
  });
}

Result<OAuthClient> PostgresStore::GetClient(const std::string& id) {
  return Run(
      [&](Connection& conn) { return QueryOne(conn, kSelectClient, "client", {id}, ReadClient); });
}

Result<std::vector<OAuthClient>> PostgresStore::ListClients() {
  return Run([&](Connection& conn) { return QueryAll(conn, kSelectClients, {}, ReadClient); });
}

Status PostgresStore::DeleteClient(const std::string& id) {
  return Run([&](Connection& conn) { return WriteOne(conn, kDeleteClient, "client", {id}); });
}

}  // namespace bulwark
