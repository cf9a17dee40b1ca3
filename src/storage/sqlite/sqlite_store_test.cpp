// What only the SQLite back-end has to prove: migrations, several processes
// on one file, busy handling, durability across SIGKILL. The behaviour every
// back-end shares is in tests/contract.
#include "storage/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/sqlite/sqlite_connection.hpp"
#include "storage/sqlite/sqlite_migrations.hpp"
#include "tests/support/temp_dir.hpp"

namespace bulwark {
namespace {

using bulwark::testing::TempDir;

template <typename R>
::testing::AssertionResult IsOk(const R& result) {
  if (result.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << ErrorCodeName(result.error().code()) << ": " << result.error().message();
}

template <typename R>
::testing::AssertionResult IsError(const R& result, ErrorCode code) {
  if (result.ok()) {
    return ::testing::AssertionFailure() << "expected " << ErrorCodeName(code) << ", got OK";
  }
  if (result.error().code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << ErrorCodeName(code) << ", got " << ErrorCodeName(result.error().code())
           << ": " << result.error().message();
  }
  return ::testing::AssertionSuccess();
}

constexpr int64_t kNow = 1'700'000'000;

int LatestVersion() { return sqlite::Migrations().back().version; }

User MakeUser(const std::string& id, const std::string& username) {
  User user;
  user.id = id;
  user.username = username;
  user.email = username + "@example.com";
  user.password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA";
  user.created_at = kNow;
  user.last_modified = kNow;
  return user;
}

Session MakeSession(const std::string& token_hash, const std::string& user_id) {
  Session session;
  session.token_hash = token_hash;
  session.user_id = user_id;
  session.username = "alice";
  session.roles = {"admin"};
  session.created_at = kNow;
  session.expires_at = kNow + 3600;
  return session;
}

// A plain sqlite3 handle for poking at the file from "outside" the store.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) ADD_FAILURE() << sqlite3_errmsg(db_);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (error ? error : "?");
    }
    sqlite3_free(error);
  }

  // First column of the first row, as text.
  std::string Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

SqliteOptions OptionsFor(const TempDir& dir) {
  SqliteOptions options;
  options.path = dir.File("bulwark.db");
  return options;
}

// --- Migrations ----------------------------------------------------------------

TEST(SqliteMigrations, VersionsStartAtOneAndIncreaseByOne) {
  const std::vector<sqlite::Migration>& migrations = sqlite::Migrations();
  ASSERT_FALSE(migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i) + 1);
    EXPECT_NE(std::string(migrations[i].name), "");
  }
}

TEST(SqliteMigrations, MigrateIsIdempotent) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  Result<int> first = MigrateSqlite(options);
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(*first, LatestVersion());
  Result<int> second = MigrateSqlite(options);
  ASSERT_TRUE(IsOk(second));
  EXPECT_EQ(*second, *first);

  RawDb raw(options.path);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM schema_migrations"), std::to_string(LatestVersion()));
  EXPECT_EQ(raw.Query("SELECT name FROM schema_migrations WHERE version = 1"),
            sqlite::Migrations()[0].name);
  // The per-user and purge indexes exist.
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN "
                      "('sessions_user_id', 'sessions_expires_at')"),
            "2");
  // Opening after migrating does not apply anything again.
  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_TRUE(IsOk(stores));
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM schema_migrations"), std::to_string(LatestVersion()));
}

TEST(SqliteMigrations, ConcurrentMigrationsOfAFreshFileAllSucceedOnce) {
  for (int round = 0; round < 5; ++round) {
    TempDir dir;
    SqliteOptions options = OptionsFor(dir);
    constexpr int kThreads = 4;
    std::vector<Result<int>> results(kThreads, Result<int>(Error::Internal("not run")));
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] { results[i] = MigrateSqlite(options); });
    }
    for (std::thread& t : threads) t.join();
    for (const Result<int>& result : results) {
      ASSERT_TRUE(IsOk(result));
      EXPECT_EQ(*result, LatestVersion());
    }
    RawDb raw(options.path);
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM schema_migrations"), std::to_string(LatestVersion()));
  }
}

TEST(SqliteMigrations, ConcurrentOpensOfAFreshFileAllSucceed) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  std::vector<Result<Stores>> results(3, Result<Stores>(Error::Internal("not run")));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = OpenSqliteStores(options); });
  }
  for (std::thread& t : threads) t.join();
  for (const Result<Stores>& result : results) ASSERT_TRUE(IsOk(result));
}

TEST(SqliteMigrations, ASchemaNewerThanThisBinaryIsAccepted) {
  // A newer replica migrated first during a rolling update; older ones keep working.
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  ASSERT_TRUE(IsOk(MigrateSqlite(options)));
  {
    RawDb raw(options.path);
    raw.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'x', 0)");
  }
  Result<int> version = MigrateSqlite(options);
  ASSERT_TRUE(IsOk(version));
  EXPECT_EQ(*version, 999);
  EXPECT_TRUE(IsOk(OpenSqliteStores(options)));
}

// --- Opening -------------------------------------------------------------------

TEST(SqliteOpen, StoresAliasOneObjectAndNameTheirKind) {
  TempDir dir;
  Result<Stores> stores = OpenSqliteStores(OptionsFor(dir));
  ASSERT_TRUE(IsOk(stores));
  EXPECT_EQ(stores->database_kind, "sqlite");
  EXPECT_EQ(stores->session_kind, "sqlite");
  const void* object = dynamic_cast<const void*>(stores->users.get());
  EXPECT_EQ(dynamic_cast<const void*>(stores->roles.get()), object);
  EXPECT_EQ(dynamic_cast<const void*>(stores->config.get()), object);
  EXPECT_EQ(dynamic_cast<const void*>(stores->sessions.get()), object);
  EXPECT_EQ(dynamic_cast<const void*>(stores->database.get()), object);
  EXPECT_EQ(dynamic_cast<const void*>(stores->session_backend.get()), object);
  EXPECT_TRUE(IsOk(stores->database->Ping()));
  EXPECT_TRUE(std::filesystem::exists(dir.File("bulwark.db")));
}

TEST(SqliteOpen, MissingDirectoryIsUnavailableAndNamesThePath) {
  TempDir dir;
  SqliteOptions options;
  options.path = dir.File("no/such/dir/bulwark.db");
  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_TRUE(IsError(stores, ErrorCode::kUnavailable));
  EXPECT_NE(stores.error().message().find(options.path), std::string::npos)
      << stores.error().message();
  Result<int> migrated = MigrateSqlite(options);
  ASSERT_TRUE(IsError(migrated, ErrorCode::kUnavailable));
  EXPECT_NE(migrated.error().message().find(options.path), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.File("no")));
}

TEST(SqliteOpen, AFileThatIsNotADatabaseIsAnError) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  {
    std::ofstream garbage(options.path, std::ios::binary);
    garbage << std::string(8192, '\x5a');
  }
  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_FALSE(stores.ok());
  EXPECT_NE(stores.error().message().find("not a database"), std::string::npos)
      << stores.error().message();
}

TEST(SqliteOpen, NonsensicalOptionsAreInvalidArguments) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  options.pool_size = 0;
  EXPECT_TRUE(IsError(OpenSqliteStores(options), ErrorCode::kInvalidArgument));
  options = OptionsFor(dir);
  options.busy_timeout_ms = -1;
  EXPECT_TRUE(IsError(OpenSqliteStores(options), ErrorCode::kInvalidArgument));
  options = OptionsFor(dir);
  options.path = "";
  EXPECT_TRUE(IsError(OpenSqliteStores(options), ErrorCode::kInvalidArgument));
  options.path = ":memory:";
  EXPECT_TRUE(IsError(MigrateSqlite(options), ErrorCode::kInvalidArgument));
}

TEST(SqliteOpen, EveryConnectionIsConfiguredForDurabilityAndIntegrity) {
  TempDir dir;
  Result<std::unique_ptr<sqlite::Connection>> conn =
      sqlite::Connection::Open(dir.File("bulwark.db"), 1234);
  ASSERT_TRUE(IsOk(conn));
  auto pragma = [&](const char* sql) {
    Result<sqlite::Statement> stmt = (*conn)->Prepare(sql);
    EXPECT_TRUE(IsOk(stmt));
    if (!stmt.ok()) return std::string();
    Result<bool> row = stmt->Step();
    EXPECT_TRUE(IsOk(row));
    return row.ok() && *row ? stmt->Text(0) : std::string();
  };
  EXPECT_EQ(pragma("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(pragma("PRAGMA synchronous"), "2");  // FULL
  EXPECT_EQ(pragma("PRAGMA foreign_keys"), "1");
  // The wait for another writer is Connection::OnBusy's, bounded by the
  // timeout (SqliteSharing.ABusyDatabaseIsUnavailableNotNotFound), not SQLite's.
  EXPECT_EQ(pragma("PRAGMA busy_timeout"), "0");
}

// --- Several processes on one file --------------------------------------------

TEST(SqliteSharing, TwoStoresOnOneFileSeeEachOthersWrites) {
  // Each OpenSqliteStores has its own connections, as a second process would.
  TempDir dir;
  Result<Stores> a = OpenSqliteStores(OptionsFor(dir));
  Result<Stores> b = OpenSqliteStores(OptionsFor(dir));
  ASSERT_TRUE(IsOk(a));
  ASSERT_TRUE(IsOk(b));

  User alice = MakeUser("00000000-0000-4000-8000-000000000001", "alice");
  ASSERT_TRUE(IsOk(a->users->CreateUser(alice)));
  EXPECT_TRUE(IsOk(b->users->GetUserByUsername("alice")));
  EXPECT_TRUE(IsError(b->users->CreateUser(alice), ErrorCode::kAlreadyExists));

  ASSERT_TRUE(IsOk(b->sessions->CreateSession(MakeSession("hash-1", alice.id))));
  EXPECT_TRUE(IsOk(a->sessions->GetSession("hash-1", kNow)));
  ASSERT_TRUE(IsOk(a->sessions->DeleteSession("hash-1")));
  EXPECT_TRUE(IsError(b->sessions->GetSession("hash-1", kNow), ErrorCode::kNotFound));

  ASSERT_TRUE(IsOk(b->config->PutConfig({"k", "1", kNow})));
  ASSERT_TRUE(IsOk(a->config->PutConfig({"k", "2", kNow})));
  Result<ConfigEntry> k = b->config->GetConfig("k");
  ASSERT_TRUE(IsOk(k));
  EXPECT_EQ(k->value_json, "2");

  ASSERT_TRUE(IsOk(a->roles->CreateRole({"00000000-0000-4000-8000-0000000000a1", "admin", "[]"})));
  ASSERT_TRUE(IsOk(b->roles->GrantRole(alice.id, "admin")));
  ASSERT_TRUE(IsOk(a->users->DeleteUser(alice.id)));
  Result<std::vector<std::string>> roles = b->roles->ListUserRoles(alice.id);
  ASSERT_TRUE(IsOk(roles));
  EXPECT_TRUE(roles->empty());
}

TEST(SqliteSharing, WritersInBothStoresAtOnceAllLand) {
  TempDir dir;
  Result<Stores> a = OpenSqliteStores(OptionsFor(dir));
  Result<Stores> b = OpenSqliteStores(OptionsFor(dir));
  ASSERT_TRUE(IsOk(a));
  ASSERT_TRUE(IsOk(b));
  constexpr int kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    SessionStore* store = (t % 2 == 0 ? a : b)->sessions.get();
    threads.emplace_back([store, t, &failures] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string hash = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!store->CreateSession(MakeSession(hash, "shared")).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  Result<std::vector<Session>> listed = a->sessions->ListUserSessions("shared", kNow);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_EQ(listed->size(), 4u * kPerThread);
}

TEST(SqliteSharing, ABusyDatabaseIsUnavailableNotNotFound) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  options.busy_timeout_ms = 50;
  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_TRUE(IsOk(stores));
  User alice = MakeUser("00000000-0000-4000-8000-000000000001", "alice");
  ASSERT_TRUE(IsOk(stores->users->CreateUser(alice)));
  ASSERT_TRUE(
      IsOk(stores->roles->CreateRole({"00000000-0000-4000-8000-0000000000a1", "admin", "[]"})));
  ASSERT_TRUE(IsOk(stores->sessions->CreateSession(MakeSession("hash-1", alice.id))));

  RawDb other(options.path);  // another process's writer, holding the lock
  other.Exec("BEGIN EXCLUSIVE");
  other.Exec("INSERT INTO configuration (key, value, last_modified) VALUES ('held', '1', 0)");

  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(
      IsError(stores->users->CreateUser(MakeUser("00000000-0000-4000-8000-000000000002", "bob")),
              ErrorCode::kUnavailable));
  EXPECT_TRUE(
      IsError(stores->users->UpdateEmail(alice.id, "a@b.c", kNow), ErrorCode::kUnavailable));
  EXPECT_TRUE(IsError(stores->roles->GrantRole(alice.id, "admin"), ErrorCode::kUnavailable));
  EXPECT_TRUE(IsError(stores->config->PutConfig({"k", "1", kNow}), ErrorCode::kUnavailable));
  EXPECT_TRUE(IsError(stores->sessions->TouchSession("hash-1", kNow + 7200, kNow),
                      ErrorCode::kUnavailable));
  EXPECT_TRUE(IsError(stores->sessions->DeleteSession("hash-1"), ErrorCode::kUnavailable));
  Status busy = stores->sessions->CreateSession(MakeSession("hash-2", alice.id));
  ASSERT_TRUE(IsError(busy, ErrorCode::kUnavailable));
  EXPECT_NE(busy.error().message().find("locked"), std::string::npos) << busy.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));

  // WAL: readers are not blocked by the writer, and see the last committed state.
  EXPECT_TRUE(IsOk(stores->users->GetUserById(alice.id)));
  EXPECT_TRUE(IsOk(stores->sessions->GetSession("hash-1", kNow)));
  EXPECT_TRUE(IsError(stores->config->GetConfig("held"), ErrorCode::kNotFound));

  other.Exec("COMMIT");
  EXPECT_TRUE(IsOk(stores->sessions->CreateSession(MakeSession("hash-2", alice.id))));
  EXPECT_TRUE(IsOk(stores->roles->GrantRole(alice.id, "admin")));
  EXPECT_TRUE(IsOk(stores->config->GetConfig("held")));
}

TEST(SqliteSharing, AWriteSurvivesSigkillRightAfterItReturned) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  constexpr int kSessions = 20;
  pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    // The child opens its own connections (never inherit sqlite handles across fork).
    Result<Stores> stores = OpenSqliteStores(options);
    if (!stores.ok()) _exit(10);
    for (int i = 0; i < kSessions; ++i) {
      if (!stores->sessions->CreateSession(MakeSession("killed-" + std::to_string(i), "u")).ok()) {
        _exit(11);
      }
    }
    // No destructor, no checkpoint, no close: just die.
    kill(getpid(), SIGKILL);
    _exit(12);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_EQ(WTERMSIG(status), SIGKILL);

  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_TRUE(IsOk(stores));
  for (int i = 0; i < kSessions; ++i) {
    EXPECT_TRUE(IsOk(stores->sessions->GetSession("killed-" + std::to_string(i), kNow)));
  }
  Result<std::vector<Session>> listed = stores->sessions->ListUserSessions("u", kNow);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_EQ(listed->size(), static_cast<size_t>(kSessions));
}

// --- Odds and ends -------------------------------------------------------------

TEST(SqliteStore, APoolOfOneSerialisesConcurrentCallers) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  options.pool_size = 1;
  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_TRUE(IsOk(stores));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string hash = std::to_string(t) + "-" + std::to_string(i);
        if (!stores->sessions->CreateSession(MakeSession(hash, "u")).ok()) ++failures;
        if (!stores->sessions->GetSession(hash, kNow).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(SqliteStore, ErrorMessagesNeverCarryBoundValues) {
  TempDir dir;
  Result<Stores> stores = OpenSqliteStores(OptionsFor(dir));
  ASSERT_TRUE(IsOk(stores));
  User user = MakeUser("00000000-0000-4000-8000-000000000001", "secret-username");
  user.password_hash = "SECRET-HASH";
  ASSERT_TRUE(IsOk(stores->users->CreateUser(user)));
  Status duplicate = stores->users->CreateUser(user);
  ASSERT_TRUE(IsError(duplicate, ErrorCode::kAlreadyExists));
  EXPECT_EQ(duplicate.error().message().find("SECRET"), std::string::npos);
  EXPECT_EQ(duplicate.error().message().find("secret-username"), std::string::npos);
  Session session = MakeSession("SECRET-TOKEN-HASH", "u");
  ASSERT_TRUE(IsOk(stores->sessions->CreateSession(session)));
  Status again = stores->sessions->CreateSession(session);
  ASSERT_TRUE(IsError(again, ErrorCode::kAlreadyExists));
  EXPECT_EQ(again.error().message().find("SECRET"), std::string::npos);
}

TEST(SqliteStore, CorruptSessionRolesAreInternalNotNotFound) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_TRUE(IsOk(stores));
  ASSERT_TRUE(IsOk(stores->sessions->CreateSession(MakeSession("h", "u"))));
  RawDb(options.path).Exec("UPDATE sessions SET roles = 'admin,user'");
  EXPECT_TRUE(IsError(stores->sessions->GetSession("h", kNow), ErrorCode::kInternal));
  EXPECT_TRUE(IsError(stores->sessions->ListUserSessions("u", kNow), ErrorCode::kInternal));
}

TEST(SqliteStore, PurgeRemovesMoreExpiredSessionsThanOneBatch) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  Result<Stores> stores = OpenSqliteStores(options);
  ASSERT_TRUE(IsOk(stores));
  {
    RawDb raw(options.path);
    raw.Exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1234) "
        "INSERT INTO sessions (token_hash, user_id, username, created_at, expires_at) "
        "SELECT 'old-' || i, 'u', 'alice', 0, 100 FROM n");
  }
  ASSERT_TRUE(IsOk(stores->sessions->CreateSession(MakeSession("live", "u"))));
  Result<int> purged = stores->sessions->PurgeExpired(kNow);
  ASSERT_TRUE(IsOk(purged));
  EXPECT_EQ(*purged, 1234);
  EXPECT_TRUE(IsOk(stores->sessions->GetSession("live", kNow)));
  Result<int> rest = stores->sessions->DeleteUserSessions("u");
  ASSERT_TRUE(IsOk(rest));
  EXPECT_EQ(*rest, 1);
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

// Group commit: concurrent rotations of different families share commits;
// none may be lost, and each chain ends where its own rotations left it, also
// after reopening the file.
TEST(SqliteRefresh, ConcurrentRotationsAreBatchedWithoutLosingOne) {
  TempDir dir;
  SqliteOptions options = OptionsFor(dir);
  constexpr int kThreads = 8;
  constexpr int kRotations = 40;
  constexpr int64_t kAt = 1'700'000'000;
  std::vector<std::string> last(kThreads);
  {
    Result<Stores> stores = OpenSqliteStores(options);
    ASSERT_TRUE(IsOk(stores));
    for (int t = 0; t < kThreads; ++t) {
      RefreshFamily f;
      f.family_id = "family-" + std::to_string(t);
      f.user_id = "user";
      f.current_hash = "hash-" + std::to_string(t) + "-0";
      f.created_at = f.rotated_at = kAt;
      f.idle_expires_at = kAt + 3600;
      f.absolute_expires_at = kAt + 7200;
      ASSERT_TRUE(IsOk(stores->refresh_tokens->CreateFamily(f)));
    }
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string presented = "hash-" + std::to_string(t) + "-0";
        for (int i = 1; i <= kRotations; ++i) {
          RotateRequest q;
          q.family_id = "family-" + std::to_string(t);
          q.presented_hash = presented;
          q.next_hash = "hash-" + std::to_string(t) + "-" + std::to_string(i);
          q.now = kAt;
          q.idle_ttl_seconds = 3600;
          q.grace_seconds = 0;
          auto r = stores->refresh_tokens->Rotate(q);
          if (!r.ok() || r->outcome != RotateOutcome::kRotated || r->family.generation != i) {
            ++wrong;
            return;
          }
          presented = q.next_hash;
        }
        last[t] = presented;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
  }
  Result<Stores> reopened = OpenSqliteStores(options);
  ASSERT_TRUE(IsOk(reopened));
  for (int t = 0; t < kThreads; ++t) {
    auto f = reopened->refresh_tokens->GetFamily("family-" + std::to_string(t), kAt);
    ASSERT_TRUE(IsOk(f));
    EXPECT_EQ(f->generation, kRotations);
    EXPECT_EQ(f->current_hash, last[t]);
    EXPECT_FALSE(f->revoked);
  }
}

}  // namespace
}  // namespace bulwark
