#include "storage/sqlite/sqlite_store.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "storage/sqlite/sqlite_json.hpp"
#include "storage/sqlite/sqlite_migrations.hpp"
#include "storage/sqlite/sqlite_store_impl.hpp"

namespace bulwark {

using sqlite::Connection;
using sqlite::ConnectionPool;
using sqlite::Statement;
using sqlite::Transaction;

namespace {

// --- SQL (parameters only; no value is ever spliced into the text) -----------

constexpr char kInsertUser[] =
    "INSERT INTO users (id, username, email, password_hash, disabled, created_at, last_modified) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr char kSelectUserById[] =
    "SELECT id, username, email, password_hash, disabled, created_at, last_modified "
    "FROM users WHERE id = ?1";
constexpr char kSelectUserByUsername[] =
    "SELECT id, username, email, password_hash, disabled, created_at, last_modified "
    "FROM users WHERE username = ?1";
constexpr char kSelectUsers[] =
    "SELECT id, username, email, password_hash, disabled, created_at, last_modified "
    "FROM users ORDER BY username";
constexpr char kUpdatePasswordHash[] =
    "UPDATE users SET password_hash = ?2, last_modified = ?3 WHERE id = ?1";
constexpr char kUpdateDisabled[] =
    "UPDATE users SET disabled = ?2, last_modified = ?3 WHERE id = ?1";
constexpr char kUpdateEmail[] = "UPDATE users SET email = ?2, last_modified = ?3 WHERE id = ?1";
// user_roles rows go with it (ON DELETE CASCADE), in the same statement.
constexpr char kDeleteUser[] = "DELETE FROM users WHERE id = ?1";

constexpr char kInsertRole[] = "INSERT INTO roles (id, name, permissions) VALUES (?1, ?2, ?3)";
constexpr char kSelectRoleByName[] = "SELECT id, name, permissions FROM roles WHERE name = ?1";
constexpr char kSelectRoles[] = "SELECT id, name, permissions FROM roles ORDER BY name";
constexpr char kDeleteRole[] = "DELETE FROM roles WHERE name = ?1";
constexpr char kUserExists[] = "SELECT 1 FROM users WHERE id = ?1";
constexpr char kSelectRoleId[] = "SELECT id FROM roles WHERE name = ?1";
constexpr char kInsertGrant[] =
    "INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?1, ?2)";
constexpr char kDeleteGrant[] = "DELETE FROM user_roles WHERE user_id = ?1 AND role_id = ?2";
constexpr char kSelectUserRoles[] =
    "SELECT r.name FROM user_roles AS ur JOIN roles AS r ON r.id = ur.role_id "
    "WHERE ur.user_id = ?1 ORDER BY r.name";

constexpr char kSelectConfig[] =
    "SELECT key, value, last_modified FROM configuration WHERE key = ?1";
constexpr char kUpsertConfig[] =
    "INSERT INTO configuration (key, value, last_modified) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, last_modified = "
    "excluded.last_modified";
constexpr char kDeleteConfig[] = "DELETE FROM configuration WHERE key = ?1";
constexpr char kSelectConfigs[] =
    "SELECT key, value, last_modified FROM configuration ORDER BY key";

constexpr char kInsertSession[] =
    "INSERT INTO sessions (token_hash, user_id, username, roles, created_at, expires_at, client, "
    "ip, user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr char kSelectSession[] =
    "SELECT token_hash, user_id, username, roles, created_at, expires_at, client, ip, user_agent "
    "FROM sessions WHERE token_hash = ?1 AND expires_at > ?2";
constexpr char kTouchSession[] =
    "UPDATE sessions SET expires_at = ?2 WHERE token_hash = ?1 AND expires_at > ?3";
constexpr char kDeleteSession[] = "DELETE FROM sessions WHERE token_hash = ?1";
constexpr char kSelectUserSessions[] =
    "SELECT token_hash, user_id, username, roles, created_at, expires_at, client, ip, user_agent "
    "FROM sessions WHERE user_id = ?1 AND expires_at > ?2 ORDER BY created_at, token_hash";
constexpr char kDeleteUserSessions[] = "DELETE FROM sessions WHERE user_id = ?1";
// Purges in batches, each its own short write transaction, so a large purge
// never holds the write lock long enough to stall other replicas' logins.
constexpr char kPurgeExpiredBatch[] =
    "DELETE FROM sessions WHERE token_hash IN "
    "(SELECT token_hash FROM sessions WHERE expires_at <= ?1 LIMIT ?2)";
constexpr int64_t kPurgeBatchSize = 500;

#define BULWARK_KEY_COLUMNS                                                                \
  "kid, algorithm, private_key, public_jwk, state, created_at, activated_at, retired_at, " \
  "expires_at"
constexpr char kInsertSigningKey[] = "INSERT INTO signing_keys (" BULWARK_KEY_COLUMNS
                                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr char kSelectSigningKeys[] =
    "SELECT " BULWARK_KEY_COLUMNS " FROM signing_keys ORDER BY created_at, kid";
constexpr char kSelectSigningKey[] =
    "SELECT " BULWARK_KEY_COLUMNS " FROM signing_keys WHERE kid = ?1";
#undef BULWARK_KEY_COLUMNS
// Compare-and-set on the state: one statement, so two replicas cannot both win.
constexpr char kUpdateSigningKeyState[] =
    "UPDATE signing_keys SET state = ?3, "
    "activated_at = CASE WHEN ?3 = 'active' THEN ?4 ELSE activated_at END, "
    "retired_at = CASE WHEN ?3 = 'retired' THEN ?4 ELSE retired_at END, "
    "expires_at = CASE WHEN ?3 = 'retired' THEN ?5 ELSE expires_at END "
    "WHERE kid = ?1 AND state = ?2";
constexpr char kSigningKeyExists[] = "SELECT 1 FROM signing_keys WHERE kid = ?1";
constexpr char kDeleteSigningKey[] = "DELETE FROM signing_keys WHERE kid = ?1";

constexpr char kUpsertRevokedJti[] =
    "INSERT INTO revoked_jtis (jti, expires_at) VALUES (?1, ?2) "
    "ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)";
constexpr char kSelectRevokedJti[] =
    "SELECT 1 FROM revoked_jtis WHERE jti = ?1 AND expires_at > ?2";
constexpr char kPurgeRevokedJtis[] = "DELETE FROM revoked_jtis WHERE expires_at <= ?1";

constexpr char kPing[] = "SELECT 1";

// --- Row mapping --------------------------------------------------------------

User ReadUser(const Statement& stmt) {
  User user;
  user.id = stmt.Text(0);
  user.username = stmt.Text(1);
  user.email = stmt.Text(2);
  user.password_hash = stmt.Text(3);
  user.disabled = stmt.Int(4) != 0;
  user.created_at = stmt.Int(5);
  user.last_modified = stmt.Int(6);
  return user;
}

Role ReadRole(const Statement& stmt) {
  Role role;
  role.id = stmt.Text(0);
  role.name = stmt.Text(1);
  role.permissions_json = stmt.Text(2);
  return role;
}

ConfigEntry ReadConfig(const Statement& stmt) {
  ConfigEntry entry;
  entry.key = stmt.Text(0);
  entry.value_json = stmt.Text(1);
  entry.last_modified = stmt.Int(2);
  return entry;
}

Result<Session> ReadSession(const Statement& stmt) {
  Session session;
  session.token_hash = stmt.Text(0);
  session.user_id = stmt.Text(1);
  session.username = stmt.Text(2);
  std::optional<std::vector<std::string>> roles = sqlite::DecodeStringArray(stmt.Text(3));
  if (!roles) return Error::Internal("sqlite: sessions.roles is not a JSON array of strings");
  session.roles = std::move(*roles);
  session.created_at = stmt.Int(4);
  session.expires_at = stmt.Int(5);
  session.client = stmt.Text(6);
  session.ip = stmt.Text(7);
  session.user_agent = stmt.Text(8);
  return session;
}

Result<SigningKeyRecord> ReadSigningKey(const Statement& stmt) {
  SigningKeyRecord key;
  key.kid = stmt.Text(0);
  key.algorithm = stmt.Text(1);
  key.private_key = stmt.Text(2);
  key.public_jwk = stmt.Text(3);
  std::optional<KeyState> state = ParseKeyState(stmt.Text(4));
  if (!state) return Error::Internal("sqlite: signing_keys.state is not a key state");
  key.state = *state;
  key.created_at = stmt.Int(5);
  key.activated_at = stmt.Int(6);
  key.retired_at = stmt.Int(7);
  key.expires_at = stmt.Int(8);
  return key;
}

// Runs a query expected to return at most one row. kNotFound (with `what`) when it returns
// none. `read` maps the row to a T or a Result<T>.
template <typename T, typename Bind, typename Read>
Result<T> QueryOne(Connection& conn, const char* sql, const char* what, Bind&& bind, Read&& read) {
  Result<Statement> stmt = conn.Prepare(sql);
  if (!stmt.ok()) return stmt.error();
  bind(*stmt);
  Result<bool> row = stmt->Step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::NotFound(std::string(what) + " not found");
  return read(*stmt);
}

// Runs a query and maps every row.
template <typename T, typename Bind, typename Read>
Result<std::vector<T>> QueryAll(Connection& conn, const char* sql, Bind&& bind, Read&& read) {
  Result<Statement> stmt = conn.Prepare(sql);
  if (!stmt.ok()) return stmt.error();
  bind(*stmt);
  std::vector<T> rows;
  for (;;) {
    Result<bool> row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) return rows;
    Result<T> value = read(*stmt);
    if (!value.ok()) return value.error();
    rows.push_back(std::move(value).value());
  }
}

// Runs a write; returns the number of rows it changed.
template <typename Bind>
Result<int> Write(Connection& conn, const char* sql, Bind&& bind) {
  Result<Statement> stmt = conn.Prepare(sql);
  if (!stmt.ok()) return stmt.error();
  bind(*stmt);
  if (Status s = stmt->Run(); !s.ok()) return s.error();
  return stmt->Changes();
}

// A write that must change exactly one row; kNotFound (with `what`) otherwise.
template <typename Bind>
Status WriteOne(Connection& conn, const char* sql, const char* what, Bind&& bind) {
  Result<int> changed = Write(conn, sql, std::forward<Bind>(bind));
  if (!changed.ok()) return changed.error();
  if (*changed == 0) return Error::NotFound(std::string(what) + " not found");
  return Status::Ok();
}

void BindSession(Statement& stmt, const Session& s) {
  stmt.Bind(1, s.token_hash);
  stmt.Bind(2, s.user_id);
  stmt.Bind(3, s.username);
  stmt.Bind(4, sqlite::EncodeStringArray(s.roles));
  stmt.Bind(5, s.created_at);
  stmt.Bind(6, s.expires_at);
  stmt.Bind(7, s.client);
  stmt.Bind(8, s.ip);
  stmt.Bind(9, s.user_agent);
}

Status CheckOptions(const SqliteOptions& options) {
  if (options.path.empty() || options.path == ":memory:") {
    // Each pooled connection would get its own private in-memory database.
    return Error::InvalidArgument("sqlite: a database file path is required");
  }
  if (options.pool_size < 1) return Error::InvalidArgument("sqlite: pool_size must be at least 1");
  if (options.busy_timeout_ms < 0) {
    return Error::InvalidArgument("sqlite: busy_timeout_ms must not be negative");
  }
  std::filesystem::path dir = std::filesystem::path(options.path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Error::Unavailable("sqlite: directory '" + dir.string() + "' of database '" +
                              options.path + "' does not exist");
  }
  return Status::Ok();
}

}  // namespace

template <typename Fn>
auto SqliteStore::WithConnection(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
  Result<ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  return fn(**lease);
}

// --- UserStore ----------------------------------------------------------------

Status SqliteStore::CreateUser(const User& user) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed = Write(conn, kInsertUser, [&](Statement& stmt) {
      stmt.Bind(1, user.id);
      stmt.Bind(2, user.username);
      stmt.Bind(3, user.email);
      stmt.Bind(4, user.password_hash);
      stmt.Bind(5, int64_t{user.disabled ? 1 : 0});
      stmt.Bind(6, user.created_at);
      stmt.Bind(7, user.last_modified);
    });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

Result<User> SqliteStore::GetUserById(const std::string& id) {
  return WithConnection([&](Connection& conn) {
    return QueryOne<User>(
        conn, kSelectUserById, "user", [&](Statement& stmt) { stmt.Bind(1, id); }, ReadUser);
  });
}

Result<User> SqliteStore::GetUserByUsername(const std::string& username) {
  return WithConnection([&](Connection& conn) {
    return QueryOne<User>(
        conn, kSelectUserByUsername, "user", [&](Statement& stmt) { stmt.Bind(1, username); },
        ReadUser);
  });
}

Result<std::vector<User>> SqliteStore::ListUsers() {
  return WithConnection([&](Connection& conn) {
    return QueryAll<User>(
        conn, kSelectUsers, [](Statement&) {},
        [](const Statement& stmt) -> Result<User> { return ReadUser(stmt); });
  });
}

Status SqliteStore::UpdatePasswordHash(const std::string& id, const std::string& password_hash,
                                       int64_t now) {
  return WithConnection([&](Connection& conn) {
    return WriteOne(conn, kUpdatePasswordHash, "user", [&](Statement& stmt) {
      stmt.Bind(1, id);
      stmt.Bind(2, password_hash);
      stmt.Bind(3, now);
    });
  });
}

Status SqliteStore::SetDisabled(const std::string& id, bool disabled, int64_t now) {
  return WithConnection([&](Connection& conn) {
    return WriteOne(conn, kUpdateDisabled, "user", [&](Statement& stmt) {
      stmt.Bind(1, id);
      stmt.Bind(2, int64_t{disabled ? 1 : 0});
      stmt.Bind(3, now);
    });
  });
}

Status SqliteStore::UpdateEmail(const std::string& id, const std::string& email, int64_t now) {
  return WithConnection([&](Connection& conn) {
    return WriteOne(conn, kUpdateEmail, "user", [&](Statement& stmt) {
      stmt.Bind(1, id);
      stmt.Bind(2, email);
      stmt.Bind(3, now);
    });
  });
}

Status SqliteStore::DeleteUser(const std::string& id) {
  return WithConnection([&](Connection& conn) {
    return WriteOne(conn, kDeleteUser, "user", [&](Statement& stmt) { stmt.Bind(1, id); });
  });
}

// --- RoleStore ----------------------------------------------------------------

Status SqliteStore::CreateRole(const Role& role) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed = Write(conn, kInsertRole, [&](Statement& stmt) {
      stmt.Bind(1, role.id);
      stmt.Bind(2, role.name);
      stmt.Bind(3, role.permissions_json);
    });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

Result<Role> SqliteStore::GetRoleByName(const std::string& name) {
  return WithConnection([&](Connection& conn) {
    return QueryOne<Role>(
        conn, kSelectRoleByName, "role", [&](Statement& stmt) { stmt.Bind(1, name); }, ReadRole);
  });
}

Result<std::vector<Role>> SqliteStore::ListRoles() {
  return WithConnection([&](Connection& conn) {
    return QueryAll<Role>(
        conn, kSelectRoles, [](Statement&) {},
        [](const Statement& stmt) -> Result<Role> { return ReadRole(stmt); });
  });
}

Status SqliteStore::DeleteRole(const std::string& name) {
  return WithConnection([&](Connection& conn) {
    return WriteOne(conn, kDeleteRole, "role", [&](Statement& stmt) { stmt.Bind(1, name); });
  });
}

Status SqliteStore::ChangeGrant(const char* sql, const std::string& user_id,
                                const std::string& role_name) {
  return WithConnection([&](Connection& conn) -> Status {
    // IMMEDIATE: the existence checks and the write see the same state.
    Transaction txn(conn);
    if (Status s = txn.Begin(); !s.ok()) return s;
    Result<int> user = QueryOne<int>(
        conn, kUserExists, "user", [&](Statement& stmt) { stmt.Bind(1, user_id); },
        [](const Statement&) { return 1; });
    if (!user.ok()) return user.error();
    Result<std::string> role_id = QueryOne<std::string>(
        conn, kSelectRoleId, "role", [&](Statement& stmt) { stmt.Bind(1, role_name); },
        [](const Statement& stmt) { return stmt.Text(0); });
    if (!role_id.ok()) return role_id.error();
    Result<int> changed = Write(conn, sql, [&](Statement& stmt) {
      stmt.Bind(1, user_id);
      stmt.Bind(2, *role_id);
    });
    if (!changed.ok()) return changed.error();
    return txn.Commit();
  });
}

Status SqliteStore::GrantRole(const std::string& user_id, const std::string& role_name) {
  return ChangeGrant(kInsertGrant, user_id, role_name);
}

Status SqliteStore::RevokeRole(const std::string& user_id, const std::string& role_name) {
  return ChangeGrant(kDeleteGrant, user_id, role_name);
}

Result<std::vector<std::string>> SqliteStore::ListUserRoles(const std::string& user_id) {
  return WithConnection([&](Connection& conn) {
    return QueryAll<std::string>(
        conn, kSelectUserRoles, [&](Statement& stmt) { stmt.Bind(1, user_id); },
        [](const Statement& stmt) -> Result<std::string> { return stmt.Text(0); });
  });
}

// --- ConfigStore --------------------------------------------------------------

Result<ConfigEntry> SqliteStore::GetConfig(const std::string& key) {
  return WithConnection([&](Connection& conn) {
    return QueryOne<ConfigEntry>(
        conn, kSelectConfig, "configuration key", [&](Statement& stmt) { stmt.Bind(1, key); },
        ReadConfig);
  });
}

Status SqliteStore::PutConfig(const ConfigEntry& entry) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed = Write(conn, kUpsertConfig, [&](Statement& stmt) {
      stmt.Bind(1, entry.key);
      stmt.Bind(2, entry.value_json);
      stmt.Bind(3, entry.last_modified);
    });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

Status SqliteStore::DeleteConfig(const std::string& key) {
  return WithConnection([&](Connection& conn) {
    return WriteOne(conn, kDeleteConfig, "configuration key",
                    [&](Statement& stmt) { stmt.Bind(1, key); });
  });
}

Result<std::vector<ConfigEntry>> SqliteStore::ListConfig() {
  return WithConnection([&](Connection& conn) {
    return QueryAll<ConfigEntry>(
        conn, kSelectConfigs, [](Statement&) {},
        [](const Statement& stmt) -> Result<ConfigEntry> { return ReadConfig(stmt); });
  });
}

// --- SessionStore -------------------------------------------------------------

Status SqliteStore::CreateSession(const Session& session) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed =
        Write(conn, kInsertSession, [&](Statement& stmt) { BindSession(stmt, session); });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

Status SqliteStore::CreateLogin(const Session& session, const RefreshFamily& family) {
  return WithConnection([&](Connection& conn) -> Status {
    Transaction txn(conn);
    if (Status s = txn.Begin(); !s.ok()) return s;
    Result<int> changed =
        Write(conn, kInsertSession, [&](Statement& stmt) { BindSession(stmt, session); });
    if (!changed.ok()) return changed.error();
    if (Status s = InsertFamily(conn, family); !s.ok()) return s;
    return txn.Commit();
  });
}

Result<Session> SqliteStore::GetSession(const std::string& token_hash, int64_t now) {
  return WithConnection([&](Connection& conn) {
    return QueryOne<Session>(
        conn, kSelectSession, "session",
        [&](Statement& stmt) {
          stmt.Bind(1, token_hash);
          stmt.Bind(2, now);
        },
        ReadSession);
  });
}

Status SqliteStore::TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) {
  return WithConnection([&](Connection& conn) {
    return WriteOne(conn, kTouchSession, "session", [&](Statement& stmt) {
      stmt.Bind(1, token_hash);
      stmt.Bind(2, expires_at);
      stmt.Bind(3, now);
    });
  });
}

Status SqliteStore::DeleteSession(const std::string& token_hash) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed =
        Write(conn, kDeleteSession, [&](Statement& stmt) { stmt.Bind(1, token_hash); });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

Result<std::vector<Session>> SqliteStore::ListUserSessions(const std::string& user_id,
                                                           int64_t now) {
  return WithConnection([&](Connection& conn) {
    return QueryAll<Session>(
        conn, kSelectUserSessions,
        [&](Statement& stmt) {
          stmt.Bind(1, user_id);
          stmt.Bind(2, now);
        },
        ReadSession);
  });
}

Result<int> SqliteStore::DeleteUserSessions(const std::string& user_id) {
  return WithConnection([&](Connection& conn) {
    return Write(conn, kDeleteUserSessions, [&](Statement& stmt) { stmt.Bind(1, user_id); });
  });
}

Result<int> SqliteStore::PurgeExpired(int64_t now) {
  return WithConnection([&](Connection& conn) -> Result<int> {
    int total = 0;
    for (;;) {
      Result<int> changed = Write(conn, kPurgeExpiredBatch, [&](Statement& stmt) {
        stmt.Bind(1, now);
        stmt.Bind(2, kPurgeBatchSize);
      });
      if (!changed.ok()) return changed.error();
      total += *changed;
      if (*changed < kPurgeBatchSize) return total;
    }
  });
}

// --- SigningKeyStore ----------------------------------------------------------

Status SqliteStore::CreateSigningKey(const SigningKeyRecord& key) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed = Write(conn, kInsertSigningKey, [&](Statement& stmt) {
      stmt.Bind(1, key.kid);
      stmt.Bind(2, key.algorithm);
      stmt.Bind(3, key.private_key);
      stmt.Bind(4, key.public_jwk);
      stmt.Bind(5, std::string_view(KeyStateName(key.state)));
      stmt.Bind(6, key.created_at);
      stmt.Bind(7, key.activated_at);
      stmt.Bind(8, key.retired_at);
      stmt.Bind(9, key.expires_at);
    });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

Result<std::vector<SigningKeyRecord>> SqliteStore::ListSigningKeys() {
  return WithConnection([&](Connection& conn) {
    return QueryAll<SigningKeyRecord>(
        conn, kSelectSigningKeys, [](Statement&) {}, ReadSigningKey);
  });
}

Result<SigningKeyRecord> SqliteStore::GetSigningKey(const std::string& kid) {
  return WithConnection([&](Connection& conn) {
    return QueryOne<SigningKeyRecord>(
        conn, kSelectSigningKey, "signing key", [&](Statement& stmt) { stmt.Bind(1, kid); },
        ReadSigningKey);
  });
}

Result<bool> SqliteStore::UpdateSigningKeyState(const std::string& kid, KeyState from, KeyState to,
                                                int64_t now, int64_t expires_at) {
  return WithConnection([&](Connection& conn) -> Result<bool> {
    Result<int> changed = Write(conn, kUpdateSigningKeyState, [&](Statement& stmt) {
      stmt.Bind(1, kid);
      stmt.Bind(2, std::string_view(KeyStateName(from)));
      stmt.Bind(3, std::string_view(KeyStateName(to)));
      stmt.Bind(4, now);
      stmt.Bind(5, expires_at);
    });
    if (!changed.ok()) return changed.error();
    if (*changed > 0) return true;
    Result<int> exists = QueryOne<int>(
        conn, kSigningKeyExists, "signing key", [&](Statement& stmt) { stmt.Bind(1, kid); },
        [](const Statement&) { return 1; });
    if (!exists.ok()) return exists.error();
    return false;
  });
}

Status SqliteStore::DeleteSigningKey(const std::string& kid) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed =
        Write(conn, kDeleteSigningKey, [&](Statement& stmt) { stmt.Bind(1, kid); });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

// --- RevocationStore ----------------------------------------------------------

Status SqliteStore::RevokeJti(const std::string& jti, int64_t expires_at) {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> changed = Write(conn, kUpsertRevokedJti, [&](Statement& stmt) {
      stmt.Bind(1, jti);
      stmt.Bind(2, expires_at);
    });
    if (!changed.ok()) return changed.error();
    return Status::Ok();
  });
}

Result<bool> SqliteStore::IsJtiRevoked(const std::string& jti, int64_t now) {
  return WithConnection([&](Connection& conn) -> Result<bool> {
    Result<int> row = QueryOne<int>(
        conn, kSelectRevokedJti, "revocation",
        [&](Statement& stmt) {
          stmt.Bind(1, jti);
          stmt.Bind(2, now);
        },
        [](const Statement&) { return 1; });
    if (row.ok()) return true;
    if (row.error().IsNotFound()) return false;
    return row.error();
  });
}

Result<int> SqliteStore::PurgeExpiredRevocations(int64_t now) {
  return WithConnection([&](Connection& conn) {
    return Write(conn, kPurgeRevokedJtis, [&](Statement& stmt) { stmt.Bind(1, now); });
  });
}

// --- HealthProbe --------------------------------------------------------------

Status SqliteStore::Ping() {
  return WithConnection([&](Connection& conn) -> Status {
    Result<int> one = QueryOne<int>(
        conn, kPing, "row", [](Statement&) {},
        [](const Statement& stmt) { return static_cast<int>(stmt.Int(0)); });
    if (!one.ok()) return one.error();
    return Status::Ok();
  });
}

// --- Entry points -------------------------------------------------------------

Result<Stores> OpenSqliteStores(const SqliteOptions& options) {
  if (Status s = CheckOptions(options); !s.ok()) return s.error();
  Result<std::unique_ptr<ConnectionPool>> pool =
      ConnectionPool::Open(options.path, options.busy_timeout_ms, options.pool_size);
  if (!pool.ok()) return pool.error();
  {
    Result<ConnectionPool::Lease> lease = (*pool)->Acquire();
    if (!lease.ok()) return lease.error();
    Result<int> version = sqlite::ApplyMigrations(**lease);
    if (!version.ok()) return version.error();
  }
  auto store = std::make_shared<SqliteStore>(std::move(pool).value());
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
  stores.database_kind = "sqlite";
  stores.session_kind = "sqlite";
  return stores;
}

Result<int> MigrateSqlite(const SqliteOptions& options) {
  if (Status s = CheckOptions(options); !s.ok()) return s.error();
  Result<std::unique_ptr<Connection>> conn =
      Connection::Open(options.path, options.busy_timeout_ms);
  if (!conn.ok()) return conn.error();
  return sqlite::ApplyMigrations(**conn);
}

}  // namespace bulwark
