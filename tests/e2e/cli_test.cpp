// The command line: configuration errors, admin commands, help.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <thread>

#include "tests/e2e/bulwark_server.hpp"

namespace bulwark::testing {
namespace {

// Runs `bulwark serve` with one bad setting; expects exit 2 and a one-line message naming it.
void ExpectConfigError(const std::string& var, const std::string& value,
                       const std::string& expected_in_message) {
  TempDir dir;
  auto env = TestEnv(dir.path());
  env["BULWARK_LISTEN"] = "127.0.0.1:" + std::to_string(FreePort());
  env[var] = value;
  ChildProcess p({kBinary, "serve"}, env, dir.File("out.log"));
  auto status = p.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << var << " did not make serve exit";
  EXPECT_EQ(*status, 2) << var << "=" << value << ": " << p.ReadLog();
  std::string out = p.ReadLog();
  EXPECT_NE(out.find(expected_in_message), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(CliE2E, BadConfigurationExitsTwoWithOneLineNamingTheVariable) {
  ExpectConfigError("BULWARK_SESSION_TTL", "abc", "BULWARK_SESSION_TTL");
  ExpectConfigError("BULWARK_SESSION_TTL", "-5", "BULWARK_SESSION_TTL");
  ExpectConfigError("BULWARK_LISTEN", "nonsense", "BULWARK_LISTEN");
  ExpectConfigError("BULWARK_LISTEN", "127.0.0.1:99999", "BULWARK_LISTEN");
  ExpectConfigError("BULWARK_LOG_FORMAT", "xml", "BULWARK_LOG_FORMAT");
  ExpectConfigError("BULWARK_DRAIN_DELAY", "soon", "BULWARK_DRAIN_DELAY");
  ExpectConfigError("CLUSTER_ENABLED", "maybe", "CLUSTER_ENABLED");
  ExpectConfigError("DATABASE_URL", "mysql://u@127.0.0.1/db", "DATABASE_URL");
  ExpectConfigError("REDIS_HOSTS", "127.0.0.1:notaport", "REDIS_HOSTS");
  ExpectConfigError("REDIS_SENTINELS", "127.0.0.1:26379", "REDIS_MASTER_NAME");
  ExpectConfigError("BULWARK_SESSION_DURABILITY", "disk", "BULWARK_SESSION_DURABILITY");
}

// A production back-end that does not answer at start is a failure (exit 1)
// that names it, not a hang; nothing listens on these loopback ports.
TEST(CliE2E, UnreachableBackEndsFailTheStartNamingThem) {
  TempDir dir;
  auto env = TestEnv(dir.path());
  env["BULWARK_LISTEN"] = "127.0.0.1:" + std::to_string(FreePort());
  env["DATABASE_URL"] =
      "postgres://postgres@127.0.0.1:" + std::to_string(FreePort()) + "/bulwark?sslmode=disable";
  ChildProcess pg({kBinary, "serve"}, env, dir.File("pg.log"));
  auto status = pg.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 1);
  EXPECT_NE(pg.ReadLog().find("postgres"), std::string::npos) << pg.ReadLog();

  // Redis-only sessions cannot start without Redis (write-through could).
  env.erase("DATABASE_URL");
  env["REDIS_HOSTS"] = "127.0.0.1:" + std::to_string(FreePort());
  env["BULWARK_SESSION_DURABILITY"] = "redis";
  ChildProcess redis({kBinary, "serve"}, env, dir.File("redis.log"));
  status = redis.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 1);
  EXPECT_NE(redis.ReadLog().find("Redis"), std::string::npos) << redis.ReadLog();
}

TEST(CliE2E, FlagOverridesEnvironment) {
  TempDir dir;
  auto env = TestEnv(dir.path());
  env["BULWARK_SESSION_TTL"] = "abc";  // bad in the environment, fixed by the flag
  int port = FreePort();
  env["BULWARK_LISTEN"] = "127.0.0.1:1";
  ChildProcess p(
      {kBinary, "serve", "--session-ttl", "120", "--listen", "127.0.0.1:" + std::to_string(port)},
      env, dir.File("out.log"));
  bool ready = false;
  for (int i = 0; i < 200 && !ready && p.running(); ++i) {
    ready = HttpRequest(port, "GET", "/health").status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(ready) << p.ReadLog();
}

TEST(CliE2E, HelpListsEverySettingAndUnknownCommandsFail) {
  TempDir dir;
  EXPECT_EQ(RunBulwark(dir.path(), {"serve", "--help"}, dir.File("help.log")), 0);
  std::ifstream in(dir.File("help.log"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* v :
       {"BULWARK_LISTEN", "BULWARK_DATA_DIR", "DB_HOST", "DATABASE_URL", "REDIS_HOSTS",
        "CLUSTER_ENABLED", "REDIS_SENTINELS", "REDIS_MASTER_NAME", "REDIS_PASSWORD", "REDIS_TLS",
        "BULWARK_SESSION_TTL", "BULWARK_ACCESS_TOKEN_TTL", "BULWARK_DRAIN_DELAY",
        "BULWARK_SHUTDOWN_TIMEOUT", "BULWARK_TLS_CLIENT_AUTH", "BULWARK_MASTER_KEY",
        "BULWARK_LOG_FORMAT", "--session-ttl"}) {
    EXPECT_NE(text.find(v), std::string::npos) << v;
  }
  EXPECT_EQ(RunBulwark(dir.path(), {"frobnicate"}, dir.File("bad.log")), 2);
  EXPECT_EQ(RunBulwark(dir.path(), {"user", "add", "--username", "x"}, dir.File("bad2.log")), 2);
  EXPECT_EQ(RunBulwark(dir.path(), {"version"}, dir.File("v.log")), 0);
}

TEST(CliE2E, UserAndRoleCommands) {
  TempDir dir;
  auto log = dir.File("cli.log");
  EXPECT_EQ(RunBulwark(dir.path(), {"migrate"}, log), 0);
  ASSERT_TRUE(AddUser(dir.path(), "carol", "carol-password", log, "admin"));
  EXPECT_FALSE(AddUser(dir.path(), "carol", "carol-password", log));  // duplicate
  EXPECT_FALSE(AddUser(dir.path(), "dave", "short", log));            // too short
  EXPECT_EQ(RunBulwark(dir.path(), {"role", "add", "--name", "ops"}, log), 0);
  EXPECT_EQ(RunBulwark(dir.path(), {"role", "grant", "--username", "carol", "--role", "ops"}, log),
            0);
  EXPECT_EQ(RunBulwark(dir.path(), {"role", "grant", "--username", "nobody", "--role", "ops"}, log),
            1);

  auto list_log = dir.File("list.log");
  EXPECT_EQ(RunBulwark(dir.path(), {"user", "list"}, list_log), 0);
  std::ifstream in(list_log);
  std::string listing((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(listing.find("carol"), std::string::npos);
  EXPECT_NE(listing.find("admin,ops"), std::string::npos) << listing;

  EXPECT_EQ(RunBulwark(dir.path(), {"role", "revoke", "--username", "carol", "--role", "ops"}, log),
            0);
  EXPECT_EQ(RunBulwark(dir.path(), {"user", "passwd", "--username", "carol", "--password-stdin"},
                       log, "new-carol-password\n"),
            0);

  BulwarkServer server(dir.path(), dir.File("server.log"));
  ASSERT_TRUE(server.WaitReady());
  EXPECT_EQ(
      HttpRequest(server.port(), "POST", "/v1/auth/login", LoginBody("carol", "new-carol-password"))
          .status,
      200);
  EXPECT_EQ(RunBulwark(dir.path(), {"user", "disable", "--username", "carol"}, log), 0);
  EXPECT_EQ(
      HttpRequest(server.port(), "POST", "/v1/auth/login", LoginBody("carol", "new-carol-password"))
          .status,
      401);
  EXPECT_EQ(RunBulwark(dir.path(), {"user", "delete", "--username", "carol"}, log), 0);
  EXPECT_EQ(RunBulwark(dir.path(), {"user", "delete", "--username", "carol"}, log), 1);
}

TEST(CliE2E, LoginRehashesWhenParametersChange) {
  TempDir dir;
  auto env = TestEnv(dir.path());
  env["BULWARK_ARGON2_ITERATIONS"] = "1";
  env["BULWARK_ARGON2_MEMORY_KIB"] = "8192";
  ASSERT_EQ(RunCommand({kBinary, "user", "add", "--username", "erin", "--password-stdin"}, env,
                       dir.File("cli.log"), "erin-password\n"),
            0);
  BulwarkServer server(dir.path(), dir.File("server.log"));  // OWASP parameters
  ASSERT_TRUE(server.WaitReady());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(
        HttpRequest(server.port(), "POST", "/v1/auth/login", LoginBody("erin", "erin-password"))
            .status,
        200);
  }
  auto metrics = HttpRequest(server.port(), "GET", "/metrics").body;
  // Upgraded once, on the first login; the second found the new parameters.
  EXPECT_NE(metrics.find("bulwark_password_rehashes_total 1\n"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace bulwark::testing
