// Sessions on Redis behind Sentinel (SPEC §2, §3), with PostgreSQL, all started
// by the test on loopback: a primary killed under load loses no acknowledged
// session, first with pure-Redis durability (WAIT on a replica is what keeps
// them) and then with write-through; and a Redis outage answers 503, never
// 401, and deletes nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/replica_harness.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/redis_servers.hpp"

namespace bulwark::testing {
namespace {

class SentinelSessionsTest : public ReplicaFixture {
 protected:
  static void SetUpTestSuite() {
    pg_ = new PostgresServer();
    sentinels_ = new RedisSentinelGroup("bulwark");
  }
  static void TearDownTestSuite() {
    delete sentinels_;
    delete pg_;
    sentinels_ = nullptr;
    pg_ = nullptr;
  }

  std::map<std::string, std::string> BackendEnv() const override {
    return {{"DATABASE_URL", DatabaseUrl(*pg_)},
            {"REDIS_SENTINELS", sentinels_->sentinels()},
            {"REDIS_MASTER_NAME", sentinels_->master_name()}};
  }

  // Kills the primary under a login + verify load through two replicas, then
  // checks every session acknowledged before, during and after the failover.
  void FailoverUnderLoad(const std::string& durability, const std::string& user) {
    AddUser(user, user + "-password");
    auto r1 = StartReplica({{"BULWARK_SESSION_DURABILITY", durability}});
    auto r2 = StartReplica({{"BULWARK_SESSION_DURABILITY", durability}});
    std::vector<std::string> tokens;
    for (int i = 0; i < 8; ++i) tokens.push_back(Login(r1->port(), user, user + "-password"));

    Load load({r1->port(), r2->port()}, tokens, user, user + "-password");
    load.Start(3);
    std::this_thread::sleep_for(500ms);
    const int killed = sentinels_->PrimaryIndex();
    ASSERT_GE(killed, 0);
    const auto failover = sentinels_->KillPrimaryAndWaitFailover();
    std::this_thread::sleep_for(1s);
    load.Stop();
    std::cout << "[ measure ] sentinel failover (" << durability << ") " << failover.count()
              << " ms; " << load.requests() << " requests, " << load.failures().size()
              << " failed during the failover\n";

    std::vector<std::string> all = tokens;
    for (const auto& t : load.created()) all.push_back(t);
    EXPECT_GT(all.size(), tokens.size());
    int lost = 0;
    for (const std::string& token : all) lost += Verify(r2->port(), token) == 200 ? 0 : 1;
    EXPECT_EQ(lost, 0) << "of " << all.size() << " acknowledged sessions";
    if (durability == "redis+db") {
      // Redis outages are covered by the record: not one request may fail.
      EXPECT_TRUE(load.failures().empty()) << Summary(load.failures());
    }
    sentinels_->StartDataNode(killed);  // back as a replica for the next test
  }

  static PostgresServer* pg_;
  static RedisSentinelGroup* sentinels_;
};

PostgresServer* SentinelSessionsTest::pg_ = nullptr;
RedisSentinelGroup* SentinelSessionsTest::sentinels_ = nullptr;

TEST_F(SentinelSessionsTest, PrimaryKilledUnderLoadLosesNoSessionWithRedisOnlyDurability) {
  FailoverUnderLoad("redis", "frank");
}

TEST_F(SentinelSessionsTest, PrimaryKilledUnderLoadFailsNothingWithWriteThrough) {
  FailoverUnderLoad("redis+db", "grace");
}

// Standalone Redis with an append-only file, so a stopped server comes back
// with its data: the outage must not have deleted anything.
class RedisOutageTest : public ReplicaFixture {
 protected:
  static void SetUpTestSuite() {
    pg_ = new PostgresServer();
    RedisServerOptions options;
    options.extra_args = {"--appendonly", "yes", "--appendfsync", "always"};
    redis_ = new RedisServer(options);
  }
  static void TearDownTestSuite() {
    delete redis_;
    delete pg_;
    redis_ = nullptr;
    pg_ = nullptr;
  }

  std::map<std::string, std::string> BackendEnv() const override {
    return {{"DATABASE_URL", DatabaseUrl(*pg_)},
            {"REDIS_HOSTS", redis_->endpoint()},
            {"BULWARK_SESSION_DURABILITY", "redis"}};
  }

  static PostgresServer* pg_;
  static RedisServer* redis_;
};

PostgresServer* RedisOutageTest::pg_ = nullptr;
RedisServer* RedisOutageTest::redis_ = nullptr;

TEST_F(RedisOutageTest, VerifyAnswers503NeverUnauthorizedAndDeletesNothing) {
  AddUser("heidi", "heidi-password");
  auto r1 = StartReplica();
  std::string token = Login(r1->port(), "heidi", "heidi-password");
  ASSERT_FALSE(token.empty());
  ASSERT_EQ(Verify(r1->port(), token), 200);

  redis_->Stop();
  for (int i = 0; i < 10; ++i) {
    HttpResult r = HttpRequest(r1->port(), "GET", "/v1/auth/verify", "",
                               {{"Authorization", "Bearer " + token}});
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_TRUE(r.Header("Retry-After").has_value());
  }
  HttpResult logout = HttpRequest(r1->port(), "POST", "/v1/auth/logout", "",
                                  {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(logout.status, 503);
  // Redis is required without write-through: the replica leaves the load balancer.
  auto deadline = SteadyClock::now() + 5s;
  int health = 0;
  while ((health = HttpRequest(r1->port(), "GET", "/health").status) != 503 &&
         SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(health, 503);
  EXPECT_EQ(HttpRequest(r1->port(), "GET", "/health/live").status, 200);

  redis_->Start();
  deadline = SteadyClock::now() + 15s;
  int status = 0;
  while ((status = Verify(r1->port(), token)) != 200 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(status, 200) << "the session did not survive the outage";
}

std::string JsonField(const std::string& body, const char* name) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return "";
  const auto* f = v.as_object().if_contains(name);
  return f && f->is_string() ? std::string(f->as_string()) : "";
}

HttpResult RefreshAt(int port, const std::string& refresh_token) {
  return HttpRequest(port, "POST", "/v1/auth/refresh",
                     R"({"refresh_token":")" + refresh_token + R"("})");
}

// Refresh families in Redis alone: the rotation is tried on the replica's I/O
// thread (its own connection, docs/redis.md) and, when the session is cached,
// answered there. The rules stay those of every store.
TEST_F(RedisOutageTest, RefreshRotatesAcrossReplicasAndAReplayOrALogoutEndsTheFamily) {
  AddUser("ivan", "ivan-password");
  auto r1 = StartReplica({{"BULWARK_REFRESH_GRACE", "0"}});
  auto r2 = StartReplica({{"BULWARK_REFRESH_GRACE", "0"}});
  HttpResult login =
      HttpRequest(r1->port(), "POST", "/v1/auth/login", LoginBody("ivan", "ivan-password"));
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string first = JsonField(login.body, "refresh_token");
  ASSERT_FALSE(first.empty()) << login.body;

  // An empty script cache: the I/O thread's EVALSHA is answered NOSCRIPT
  // (nothing ran) and the store pool's EVAL rotates instead.
  ASSERT_TRUE(redis_->Call({"SCRIPT", "FLUSH"}).has_value());
  HttpResult rotated = RefreshAt(r1->port(), first);
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  const std::string second = JsonField(rotated.body, "refresh_token");
  ASSERT_FALSE(second.empty());
  EXPECT_NE(second, first);
  EXPECT_FALSE(JsonField(rotated.body, "access_token").empty());

  // The other replica goes on with the family, token after token.
  std::string current = second;
  for (int i = 0; i < 20; ++i) {
    HttpResult r = RefreshAt(r2->port(), current);
    ASSERT_EQ(r.status, 200) << "rotation " << i << ": " << r.body;
    current = JsonField(r.body, "refresh_token");
    ASSERT_FALSE(current.empty());
  }
  // A rotated token presented again outside the grace window (0 s) revokes
  // the whole family: the live token dies with it, on every replica.
  std::this_thread::sleep_for(1100ms);
  HttpResult replay = RefreshAt(r1->port(), second);
  EXPECT_EQ(replay.status, 400) << replay.body;
  EXPECT_NE(replay.body.find("invalid_grant"), std::string::npos) << replay.body;
  HttpResult revoked = RefreshAt(r2->port(), current);
  EXPECT_EQ(revoked.status, 400) << "the family should be revoked: " << revoked.body;

  // A logout on one replica ends the session's family on the other, whose
  // cache held the session (each refresh that still succeeds rotates).
  HttpResult login2 =
      HttpRequest(r1->port(), "POST", "/v1/auth/login", LoginBody("ivan", "ivan-password"));
  ASSERT_EQ(login2.status, 200) << login2.body;
  current = JsonField(login2.body, "refresh_token");
  HttpResult warm = RefreshAt(r2->port(), current);
  ASSERT_EQ(warm.status, 200) << warm.body;
  current = JsonField(warm.body, "refresh_token");
  HttpResult logout = HttpRequest(r1->port(), "POST", "/v1/auth/logout", "",
                                  {{"Authorization", "Bearer " + TokenOf(login2)}});
  ASSERT_EQ(logout.status, 204) << logout.body;
  const auto deadline = SteadyClock::now() + 2s;
  int status = 200;
  while (SteadyClock::now() < deadline) {
    HttpResult r = RefreshAt(r2->port(), current);
    status = r.status;
    if (status != 200) {
      EXPECT_NE(r.body.find("invalid_grant"), std::string::npos) << r.body;
      break;
    }
    current = JsonField(r.body, "refresh_token");
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(status, 400) << "a refresh still succeeded 2 s after the logout";
}

}  // namespace
}  // namespace bulwark::testing
