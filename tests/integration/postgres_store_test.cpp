// The PostgreSQL back-end against a real server (tests/support/postgres_server):
// migrations under concurrency, reconnection after restarts and crashes, the
// circuit breaker, timeouts, TLS, error mapping. The store contract itself is
// tested by tests/contract (backend "Postgres").
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "metrics/registry.hpp"
#include "storage/postgres/pg_migrations.hpp"
#include "storage/postgres/postgres_store.hpp"
#include "storage/postgres/postgres_store_impl.hpp"
#include "tests/support/postgres_server.hpp"

namespace bulwark::testing {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

milliseconds Since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
}

int LatestVersion() { return postgres::Migrations().back().version; }

// A direct libpq connection, for what the stores do not offer (locks, checks).
class DirectConnection {
 public:
  explicit DirectConnection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}
  ~DirectConnection() { PQfinish(conn_); }
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return PQerrorMessage(conn_); }
  // Runs `sql`; the first column of the first row ("" when none), or "ERROR: ...".
  std::string Scalar(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    std::string out;
    ExecStatusType status = PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    } else if (PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    return out;
  }
  PGconn* get() const { return conn_; }

 private:
  PGconn* conn_;
};

User MakeUser(const std::string& username) {
  static std::atomic<int> counter{0};
  User user;
  user.id = "00000000-0000-4000-8000-" + std::to_string(100000000000 + counter.fetch_add(1));
  user.username = username;
  user.email = username + "@example.com";
  user.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0c2FsdA$TOP-SECRET-HASH";
  user.created_at = 1700000000;
  user.last_modified = 1700000000;
  return user;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new PostgresServer();
    std::printf("[ postgres ] server started in %lld ms on port %d\n",
                static_cast<long long>(server_->startup_time().count()), server_->port());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    // A test that stopped or paused the server must not break the next one.
    if (server_->paused()) server_->Resume();
    if (!server_->running()) server_->Start();
  }

  // Options over a fresh schema, with short timeouts.
  static PostgresOptions FreshOptions() {
    PostgresOptions options;
    options.conninfo = server_->CreateFreshSchema();
    options.pool_size = 4;
    options.connect_timeout = milliseconds(1000);
    options.statement_timeout = milliseconds(1000);
    options.acquire_timeout = milliseconds(1000);
    return options;
  }

  static Stores Open(const PostgresOptions& options) {
    Result<Stores> stores = OpenPostgresStores(options);
    if (!stores.ok()) {
      ADD_FAILURE() << "OpenPostgresStores: " << stores.error().message();
      return {};
    }
    return std::move(stores).value();
  }

  static PostgresStore& Store(const Stores& stores) {
    return dynamic_cast<PostgresStore&>(*stores.database);
  }

  static PostgresServer* server_;
};

PostgresServer* PostgresStoreTest::server_ = nullptr;

TEST_F(PostgresStoreTest, OpensMigratesAndReportsItsKinds) {
  PostgresOptions options = FreshOptions();
  Stores stores = Open(options);
  ASSERT_NE(stores.users, nullptr);
  EXPECT_EQ(stores.database_kind, "postgres");
  EXPECT_EQ(stores.session_kind, "postgres");
  EXPECT_EQ(stores.database.get(), stores.session_backend.get());
  EXPECT_TRUE(stores.database->Ping().ok());

  // Migrating again is a no-op that reports the same version.
  Result<int> version = MigratePostgres(options);
  ASSERT_TRUE(version.ok()) << version.error().message();
  EXPECT_EQ(*version, LatestVersion());
  DirectConnection direct(options.conninfo);
  ASSERT_TRUE(direct.ok()) << direct.error();
  EXPECT_EQ(direct.Scalar("SELECT count(*) FROM schema_migrations"),
            std::to_string(postgres::Migrations().size()));
}

TEST_F(PostgresStoreTest, ConcurrentMigrationsFromThreeThreadsAllSucceed) {
  PostgresOptions options = FreshOptions();
  std::atomic<bool> go{false};
  std::vector<Result<int>> results(3, Error::Internal("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      results[i] = MigratePostgres(options);
    });
  }
  go = true;
  for (std::thread& t : threads) t.join();
  for (const Result<int>& r : results) {
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, LatestVersion());
  }
  DirectConnection direct(options.conninfo);
  EXPECT_EQ(direct.Scalar("SELECT count(*) FROM schema_migrations"),
            std::to_string(postgres::Migrations().size()));
  EXPECT_EQ(direct.Scalar("SELECT max(version) FROM schema_migrations"),
            std::to_string(LatestVersion()));
}

TEST_F(PostgresStoreTest, ConcurrentMigrationsFromThreeProcessesAllSucceed) {
  PostgresOptions options = FreshOptions();
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < 3; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(gate[1]);
      char byte;
      // Blocks until the parent closes its end: all three start together.
      ssize_t ignored = read(gate[0], &byte, 1);
      (void)ignored;
      Result<int> version = MigratePostgres(options);
      _exit(version.ok() && *version == LatestVersion() ? 0 : 1);
    }
    children.push_back(pid);
  }
  close(gate[0]);
  close(gate[1]);
  for (pid_t pid : children) {
    int status = -1;
    auto deadline = SteadyClock::now() + std::chrono::seconds(30);
    while (waitpid(pid, &status, WNOHANG) == 0 && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (SteadyClock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  DirectConnection direct(options.conninfo);
  EXPECT_EQ(direct.Scalar("SELECT count(*) FROM schema_migrations"),
            std::to_string(postgres::Migrations().size()));
}

TEST_F(PostgresStoreTest, UniqueViolationIsAlreadyExistsWithoutSecrets) {
  Stores stores = Open(FreshOptions());
  User alice = MakeUser("alice");
  ASSERT_TRUE(stores.users->CreateUser(alice).ok());
  User again = MakeUser("alice");
  Status s = stores.users->CreateUser(again);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kAlreadyExists) << s.error().message();
  EXPECT_EQ(s.error().message().find("TOP-SECRET-HASH"), std::string::npos) << s.error().message();
  // A NUL byte cannot be stored: rejected before it reaches the server.
  User nul = MakeUser(std::string("nul\0byte", 8));
  s = stores.users->CreateUser(nul);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  // Neither counts against the breaker.
  EXPECT_EQ(Store(stores).breaker_state(), resilience::BreakerState::kClosed);
}

TEST_F(PostgresStoreTest, SurvivesServerRestartAndCrashWithoutReopening) {
  PostgresOptions options = FreshOptions();
  Stores stores = Open(options);
  ASSERT_TRUE(stores.users->CreateUser(MakeUser("before")).ok());
  // Fill the pool with several open connections.
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] { EXPECT_TRUE(stores.users->ListUsers().ok()); });
    }
    for (std::thread& t : threads) t.join();
  }

  auto started = SteadyClock::now();
  server_->Stop();
  server_->Start();
  std::printf("[ postgres ] restart (fast shutdown + start) took %lld ms\n",
              static_cast<long long>(Since(started).count()));
  // Every pooled connection is dead; the pool notices and reconnects, so not
  // even the first call after the restart fails.
  for (int i = 0; i < 8; ++i) {
    Result<User> got = stores.users->GetUserByUsername("before");
    ASSERT_TRUE(got.ok()) << "call " << i << ": " << got.error().message();
  }

  server_->Kill();
  server_->Start();
  ASSERT_TRUE(stores.users->CreateUser(MakeUser("after-crash")).ok());
  Result<std::vector<User>> all = stores.users->ListUsers();
  ASSERT_TRUE(all.ok()) << all.error().message();
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ(Store(stores).breaker_times_opened(), 0u);
}

TEST_F(PostgresStoreTest, DownIsUnavailableFastBreakerOpensAndRecovers) {
  metrics::Registry registry;
  PostgresOptions options = FreshOptions();
  options.breaker.failure_threshold = 3;
  options.breaker.open_duration = milliseconds(300);
  options.metrics = &registry;
  Stores stores = Open(options);
  ASSERT_TRUE(stores.database->Ping().ok());

  server_->Stop();
  for (int i = 0; i < 3; ++i) {
    auto started = SteadyClock::now();
    Status s = stores.database->Ping();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable) << s.error().message();
    EXPECT_LT(Since(started), milliseconds(500)) << "connection refused should be immediate";
  }
  EXPECT_EQ(Store(stores).breaker_state(), resilience::BreakerState::kOpen);

  // Open: calls fail at once, far under the statement timeout.
  auto started = SteadyClock::now();
  Result<User> rejected = stores.users->GetUserByUsername("anyone");
  milliseconds elapsed = Since(started);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(rejected.error().message(), "postgres: circuit open");
  EXPECT_LT(elapsed, milliseconds(50));
  std::string text = registry.RenderPrometheus();
  EXPECT_NE(text.find("bulwark_dependency_breaker_state{dependency=\"postgres\"} 2"),
            std::string::npos)
      << text;

  // Back up: after open_duration one probe goes through, succeeds and closes it.
  server_->Start();
  std::this_thread::sleep_for(options.breaker.open_duration + milliseconds(50));
  Status probe = stores.database->Ping();
  ASSERT_TRUE(probe.ok()) << probe.error().message();
  EXPECT_EQ(Store(stores).breaker_state(), resilience::BreakerState::kClosed);
  EXPECT_TRUE(stores.users->ListUsers().ok());
  text = registry.RenderPrometheus();
  EXPECT_NE(text.find("bulwark_dependency_breaker_state{dependency=\"postgres\"} 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("outcome=\"rejected\""), std::string::npos);
}

TEST_F(PostgresStoreTest, HungServerIsUnavailableWithinTheTimeouts) {
  PostgresOptions options = FreshOptions();
  options.pool_size = 1;
  options.connect_timeout = milliseconds(300);
  options.statement_timeout = milliseconds(300);
  options.breaker.failure_threshold = 2;
  options.breaker.open_duration = milliseconds(200);
  Stores stores = Open(options);
  ASSERT_TRUE(stores.database->Ping().ok());

  server_->Pause();
  // The pooled connection gets no answer: given up after statement timeout + grace.
  auto started = SteadyClock::now();
  Status s = stores.database->Ping();
  milliseconds first = Since(started);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable) << s.error().message();
  EXPECT_LT(first, milliseconds(300) + postgres::kClientGrace + milliseconds(700));
  // A new connection cannot complete its handshake: connect timeout.
  started = SteadyClock::now();
  s = stores.database->Ping();
  milliseconds second = Since(started);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable) << s.error().message();
  EXPECT_LT(second, milliseconds(300 + 700));
  // Two timeouts opened the breaker: no more waiting.
  started = SteadyClock::now();
  s = stores.database->Ping();
  EXPECT_FALSE(s.ok());
  EXPECT_LT(Since(started), milliseconds(50));

  server_->Resume();
  std::this_thread::sleep_for(options.breaker.open_duration + milliseconds(50));
  s = stores.database->Ping();
  EXPECT_TRUE(s.ok()) << s.error().message();
  std::printf("[ postgres ] hung server: %lld ms on a pooled connection, %lld ms to connect\n",
              static_cast<long long>(first.count()), static_cast<long long>(second.count()));
}

TEST_F(PostgresStoreTest, StatementTimeoutIsUnavailableAndTheConnectionStaysUsable) {
  PostgresOptions options = FreshOptions();
  options.statement_timeout = milliseconds(500);
  Stores stores = Open(options);
  ASSERT_TRUE(stores.users->CreateUser(MakeUser("locked")).ok());

  DirectConnection holder(options.conninfo);
  ASSERT_TRUE(holder.ok()) << holder.error();
  ASSERT_EQ(holder.Scalar("BEGIN"), "");
  ASSERT_EQ(holder.Scalar("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"), "");

  auto started = SteadyClock::now();
  Result<User> got = stores.users->GetUserByUsername("locked");
  milliseconds elapsed = Since(started);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable) << got.error().message();
  EXPECT_NE(got.error().message().find("timed out"), std::string::npos);
  EXPECT_GE(elapsed, milliseconds(450));
  EXPECT_LT(elapsed, milliseconds(1400));

  ASSERT_EQ(holder.Scalar("COMMIT"), "");
  got = stores.users->GetUserByUsername("locked");
  EXPECT_TRUE(got.ok()) << got.error().message();
  std::printf("[ postgres ] statement timeout 500 ms -> kUnavailable after %lld ms\n",
              static_cast<long long>(elapsed.count()));
}

TEST_F(PostgresStoreTest, ExhaustedPoolIsUnavailableAfterAcquireTimeout) {
  PostgresOptions options = FreshOptions();
  options.pool_size = 1;
  options.acquire_timeout = milliseconds(200);
  options.statement_timeout = milliseconds(2000);
  Stores stores = Open(options);

  DirectConnection holder(options.conninfo);
  ASSERT_EQ(holder.Scalar("BEGIN"), "");
  ASSERT_EQ(holder.Scalar("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"), "");
  // The only connection waits for the lock...
  std::thread blocked([&] { EXPECT_TRUE(stores.users->ListUsers().ok()); });
  std::this_thread::sleep_for(milliseconds(100));
  // ...so this call finds none free.
  auto started = SteadyClock::now();
  Status s = stores.database->Ping();
  milliseconds elapsed = Since(started);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable) << s.error().message();
  EXPECT_GE(elapsed, milliseconds(150));
  EXPECT_LT(elapsed, milliseconds(1000));
  ASSERT_EQ(holder.Scalar("COMMIT"), "");
  blocked.join();
  EXPECT_TRUE(stores.database->Ping().ok());
}

TEST_F(PostgresStoreTest, TlsVerifyFullWorksAndAWrongCaFails) {
  PostgresServer tls_server(PostgresServerOptions{.tls = true});
  std::printf("[ postgres ] TLS server started in %lld ms\n",
              static_cast<long long>(tls_server.startup_time().count()));

  PostgresOptions options;
  options.conninfo = tls_server.CreateFreshSchema();  // sslmode=verify-full, sslrootcert=CA
  ASSERT_NE(options.conninfo.find("sslmode=verify-full"), std::string::npos);
  Result<Stores> stores = OpenPostgresStores(options);
  ASSERT_TRUE(stores.ok()) << stores.error().message();
  ASSERT_TRUE(stores->users->CreateUser(MakeUser("over-tls")).ok());
  EXPECT_TRUE(stores->users->GetUserByUsername("over-tls").ok());

  DirectConnection direct(options.conninfo);
  ASSERT_TRUE(direct.ok()) << direct.error();
  EXPECT_EQ(PQsslInUse(direct.get()), 1);
  EXPECT_EQ(direct.Scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");

  // By host name too (the certificate names localhost and 127.0.0.1).
  PostgresOptions by_name = options;
  by_name.conninfo += " host=localhost hostaddr=127.0.0.1";
  EXPECT_TRUE(MigratePostgres(by_name).ok());

  PostgresOptions wrong_ca = options;
  wrong_ca.conninfo += " sslrootcert=" + tls_server.other_ca_file();
  Result<Stores> refused = OpenPostgresStores(wrong_ca);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message().find("certificate"), std::string::npos)
      << refused.error().message();

  PostgresOptions wrong_name = options;
  wrong_name.conninfo += " host=127.0.0.2 hostaddr=127.0.0.1";
  Result<int> mismatch = MigratePostgres(wrong_name);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code(), ErrorCode::kUnavailable);
}

TEST_F(PostgresStoreTest, ConnectionLostMidStatementIsUnavailableThenReconnects) {
  PostgresOptions options = FreshOptions();
  options.pool_size = 1;
  options.statement_timeout = milliseconds(5000);
  Stores stores = Open(options);
  ASSERT_TRUE(stores.users->CreateUser(MakeUser("carol")).ok());

  // Our statement waits for a lock...
  DirectConnection holder(options.conninfo);
  ASSERT_EQ(holder.Scalar("BEGIN"), "");
  ASSERT_EQ(holder.Scalar("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"), "");
  Result<User> during = Error::Internal("not run");
  std::thread blocked([&] { during = stores.users->GetUserByUsername("carol"); });
  std::this_thread::sleep_for(milliseconds(200));
  // ...when its backend is terminated (what an admin, a failover or a crash does).
  DirectConnection admin(server_->Conninfo());
  ASSERT_TRUE(admin.ok()) << admin.error();
  EXPECT_EQ(admin.Scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE application_name = 'bulwark' AND state = 'active'"),
            "1");
  blocked.join();
  ASSERT_FALSE(during.ok());
  EXPECT_EQ(during.error().code(), ErrorCode::kUnavailable) << during.error().message();
  ASSERT_EQ(holder.Scalar("COMMIT"), "");

  // The broken connection was discarded: the next call connects afresh.
  Result<User> after = stores.users->GetUserByUsername("carol");
  EXPECT_TRUE(after.ok()) << after.error().message();
}

}  // namespace
}  // namespace bulwark::testing
