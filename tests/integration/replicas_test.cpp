// Three Bulwark replicas on PostgreSQL + Redis Cluster (SPEC §1-3), all started
// by the test on loopback: sessions cross replicas, a SIGTERMed replica fails
// no request on the others, a Redis primary dies, every Redis node dies,
// PostgreSQL stops - and no acknowledged session is lost.
#include <gtest/gtest.h>

#include <signal.h>
#include <cstdio>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crypto/tokens.hpp"
#include "redis/redis_client.hpp"
#include "tests/integration/replica_harness.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_servers.hpp"
#include "tests/support/temp_dir.hpp"

namespace bulwark::testing {
namespace {

using Clock = std::chrono::steady_clock;

class ReplicasTest : public ReplicaFixture {
 protected:
  static void SetUpTestSuite() {
    pg_ = new PostgresServer();
    cluster_ = new RedisCluster();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete pg_;
    cluster_ = nullptr;
    pg_ = nullptr;
  }

  std::map<std::string, std::string> BackendEnv() const override {
    return {{"DATABASE_URL", DatabaseUrl(*pg_)},
            {"REDIS_HOSTS", cluster_->seeds()},
            {"CLUSTER_ENABLED", "true"}};
  }

  static PostgresServer* pg_;
  static RedisCluster* cluster_;
};

PostgresServer* ReplicasTest::pg_ = nullptr;
RedisCluster* ReplicasTest::cluster_ = nullptr;

TEST_F(ReplicasTest, ASessionCreatedOnOneReplicaVerifiesOnTheOthers) {
  AddUser("alice", "alice-password");
  auto r1 = StartReplica();
  auto r2 = StartReplica();
  auto r3 = StartReplica();
  std::string token = Login(r1->port(), "alice", "alice-password");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(Verify(r2->port(), token), 200);
  EXPECT_EQ(Verify(r3->port(), token), 200);
  // r2 answers again from its session cache (docs/redis.md, "Session cache").
  EXPECT_EQ(Verify(r2->port(), token), 200);
  HttpResult metrics = HttpRequest(r2->port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("bulwark_session_cache_live 1"), std::string::npos);
  EXPECT_EQ(metrics.body.find("bulwark_session_cache_hits_total 0"), std::string::npos)
      << "r2 never answered from its cache";
  HttpResult out = HttpRequest(r3->port(), "POST", "/v1/auth/logout", "",
                               {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(out.status, 204);
  // The logout reaches r1 and r2 as a Redis invalidation: 401 within
  // milliseconds (polled, bounded, and the delay reported).
  const auto logged_out = std::chrono::steady_clock::now();
  int r2_status = Verify(r2->port(), token);
  int attempts = 1;
  for (; attempts < 200 && r2_status != 401; ++attempts) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    r2_status = Verify(r2->port(), token);
  }
  EXPECT_EQ(r2_status, 401) << "r2 still accepts a session logged out on r3";
  std::printf("[          ] r2 answered 401 %lld ms after the logout on r3 (verify #%d)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - logged_out)
                                         .count()),
              attempts);
  EXPECT_EQ(Verify(r1->port(), token), 401);
  // /health names both back-ends.
  HttpResult health = HttpRequest(r1->port(), "GET", "/health");
  EXPECT_NE(health.body.find(R"("kind":"postgres")"), std::string::npos) << health.body;
  EXPECT_NE(health.body.find(R"("kind":"redis")"), std::string::npos) << health.body;
}

TEST_F(ReplicasTest, SigtermOfOneReplicaUnderLoadFailsNothingOnTheOthers) {
  AddUser("bob", "bob-password");
  auto r1 = StartReplica();
  auto r2 = StartReplica();
  auto r3 = StartReplica();
  std::vector<std::string> tokens;
  for (int i = 0; i < 6; ++i) tokens.push_back(Login(r1->port(), "bob", "bob-password"));

  Load load({r2->port(), r3->port()}, tokens, "bob", "bob-password");
  load.Start(3);
  std::this_thread::sleep_for(500ms);
  r1->process().Signal(SIGTERM);
  auto exit_status = r1->process().Wait(15s);
  std::this_thread::sleep_for(300ms);
  load.Stop();

  ASSERT_TRUE(exit_status.has_value());
  EXPECT_EQ(*exit_status, 0);
  EXPECT_GT(load.requests(), 50);
  EXPECT_TRUE(load.failures().empty()) << Summary(load.failures());
  for (const std::string& token : tokens) EXPECT_EQ(Verify(r2->port(), token), 200);
  for (const std::string& token : load.created()) EXPECT_EQ(Verify(r3->port(), token), 200);
}

TEST_F(ReplicasTest, ARedisPrimaryKilledUnderLoadLosesNoAcknowledgedSession) {
  AddUser("carol", "carol-password");
  auto r1 = StartReplica();
  auto r2 = StartReplica();
  std::vector<std::string> tokens;
  for (int i = 0; i < 8; ++i) tokens.push_back(Login(r1->port(), "carol", "carol-password"));

  Load load({r1->port(), r2->port()}, tokens, "carol", "carol-password");
  load.Start(3);
  std::this_thread::sleep_for(500ms);
  // The slot of one of the sessions created above: its primary dies.
  const int slot = redis::KeySlot("session:" + Sha256Hex(tokens[0]));
  const int killed = cluster_->IndexOfPort(cluster_->PrimaryPortForSlot(slot));
  const auto failover = cluster_->KillPrimaryAndWaitFailover(slot);
  std::this_thread::sleep_for(1s);
  load.Stop();

  std::cout << "[ measure ] cluster failover " << failover.count() << " ms; " << load.requests()
            << " requests, " << load.failures().size() << " failed\n";
  EXPECT_TRUE(load.failures().empty()) << Summary(load.failures());
  std::vector<std::string> all = tokens;
  for (const auto& t : load.created()) all.push_back(t);
  for (const std::string& token : all) EXPECT_EQ(Verify(r2->port(), token), 200);
  cluster_->StartNode(killed);  // rejoins as a replica
  ASSERT_TRUE(cluster_->WaitHealthy(20s));
}

TEST_F(ReplicasTest, EveryRedisNodeLostSessionsVerifyFromPostgresAndRecoverIntoRedis) {
  AddUser("dave", "dave-password");
  auto r1 = StartReplica();
  std::vector<std::string> tokens;
  for (int i = 0; i < 5; ++i) tokens.push_back(Login(r1->port(), "dave", "dave-password"));

  cluster_->KillAll();
  for (const std::string& token : tokens) EXPECT_EQ(Verify(r1->port(), token), 200);
  // Logins keep working on PostgreSQL alone.
  std::string during = Login(r1->port(), "dave", "dave-password");
  EXPECT_FALSE(during.empty());
  HttpResult health = HttpRequest(r1->port(), "GET", "/health");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_NE(health.body.find("degraded"), std::string::npos) << health.body;

  cluster_->StartAll();  // empty: no persistence
  ASSERT_TRUE(cluster_->WaitHealthy(30s));
  tokens.push_back(during);
  // Verification through the recovered cluster copies each session back.
  auto deadline = Clock::now() + 20s;
  for (const std::string& token : tokens) {
    int status = 0;
    while ((status = Verify(r1->port(), token)) != 200 && Clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(status, 200);
  }
  redis::ClientOptions options;
  options.mode = redis::Mode::kCluster;
  options.endpoints = *redis::ParseEndpoints(cluster_->seeds());
  auto client = redis::Connect(options);
  ASSERT_TRUE(client.ok()) << client.error().message();
  for (const std::string& token : tokens) {
    auto r = (*client)->Command({"EXISTS", "session:" + Sha256Hex(token)});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->integer, 1) << "session not restored into Redis";
  }
}

TEST_F(ReplicasTest, PostgresDownLoginIs503VerifyStillWorksAndRecoversWithoutRestart) {
  AddUser("erin", "erin-password");
  auto r1 = StartReplica();
  std::string token = Login(r1->port(), "erin", "erin-password");
  ASSERT_FALSE(token.empty());

  pg_->Stop();
  HttpResult login =
      HttpRequest(r1->port(), "POST", "/v1/auth/login", LoginBody("erin", "erin-password"));
  EXPECT_EQ(login.status, 503) << login.body;
  EXPECT_TRUE(login.Header("Retry-After").has_value());
  EXPECT_EQ(Verify(r1->port(), token), 200);
  // /health stays 200 (sessions still verify) and names the failing component.
  auto deadline = Clock::now() + 5s;
  HttpResult health;
  do {
    health = HttpRequest(r1->port(), "GET", "/health");
    if (health.body.find(R"("status":"degraded")") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() < deadline);
  EXPECT_EQ(health.status, 200);
  EXPECT_NE(health.body.find(R"("database":{"status":"down")"), std::string::npos) << health.body;
  EXPECT_EQ(HttpRequest(r1->port(), "GET", "/health/live").status, 200);

  pg_->Start();
  deadline = Clock::now() + 15s;
  int status = 0;
  while (Clock::now() < deadline) {
    status = HttpRequest(r1->port(), "POST", "/v1/auth/login", LoginBody("erin", "erin-password"))
                 .status;
    if (status == 200) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(status, 200) << "login did not recover after PostgreSQL came back";
}

}  // namespace
}  // namespace bulwark::testing
