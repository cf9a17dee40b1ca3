// The Redis client against a real 6-node Redis Cluster: slot routing, hash
// tags, MOVED and ASK during a slot migration, failover of a primary under
// load (no acknowledged write lost), loss of every node.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "redis/redis_client.hpp"
#include "tests/integration/redis_test_support.hpp"
#include "tests/support/redis_servers.hpp"

namespace bulwark::redis {
namespace {

using std::chrono::milliseconds;
using testing::RedisCall;
using testing::RedisCluster;

ClientOptions ClusterOptions(const RedisCluster& cluster) {
  ClientOptions o;
  o.mode = Mode::kCluster;
  auto seeds = ParseEndpoints(cluster.seeds());
  EXPECT_TRUE(seeds.ok());
  o.endpoints = *seeds;
  o.connect_timeout = milliseconds(500);
  o.command_timeout = milliseconds(1000);
  return o;
}

class RedisClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Clock::time_point start = Clock::now();
    cluster_ = new RedisCluster();
    std::printf("[          ] cluster of 6 ready in %lld ms\n",
                static_cast<long long>(MsSince(start)));
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster_->WaitHealthy(std::chrono::seconds(20)));
    cluster_->FlushAll();
  }
  static RedisCluster* cluster_;
};

RedisCluster* RedisClusterTest::cluster_ = nullptr;

TEST_F(RedisClusterTest, KeysSpreadOverAllPrimaries) {
  auto client = MustConnect(ClusterOptions(*cluster_));
  ASSERT_TRUE(client);
  for (int i = 0; i < 300; ++i) {
    std::string key = "spread:" + std::to_string(i);
    auto r = client->Command({"SET", key, std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->str, "OK") << r->str;
  }
  std::vector<int> primaries = cluster_->PrimaryPorts();
  ASSERT_EQ(primaries.size(), 3u);
  int64_t total = 0;
  for (int port : primaries) {
    auto size = RedisCall(port, {"DBSIZE"});
    ASSERT_TRUE(size);
    EXPECT_GT(std::stoll(*size), 0) << "primary " << port << " got no key";
    total += std::stoll(*size);
  }
  EXPECT_EQ(total, 300);
  for (int i = 0; i < 300; ++i) {
    auto r = client->Command({"GET", "spread:" + std::to_string(i)});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->str, std::to_string(i));
  }
  EXPECT_TRUE(client->Ping().ok());
}

// Reads from a bound thread are routed by slot to every primary, each on the
// thread's own connection to that node, and answered on that thread.
TEST_F(RedisClusterTest, BoundThreadReadsFromEveryPrimary) {
  auto client = MustConnect(ClusterOptions(*cluster_));
  ASSERT_TRUE(client);
  std::vector<std::vector<std::string>> gets;
  for (int i = 0; i < 60; ++i) {
    std::string key = "bound-spread:" + std::to_string(i);
    ASSERT_TRUE(client->Command({"SET", key, std::to_string(i)}).ok());
    gets.push_back({"GET", key});
  }
  BoundThread thread;
  std::vector<BoundThread::Answer> answers = thread.TryAll(*client, gets);
  ASSERT_EQ(answers.size(), gets.size()) << "not every callback came within 5 s";
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i].reply.has_value()) << gets[i][1];
    EXPECT_EQ(answers[i].reply->str, std::to_string(i));
    EXPECT_TRUE(answers[i].on_this_thread);
  }
}

TEST_F(RedisClusterTest, HashTaggedPipeline) {
  auto client = MustConnect(ClusterOptions(*cluster_));
  ASSERT_TRUE(client);
  auto r = client->Pipeline({{"SET", "{user:7}.session", "s"},
                             {"SADD", "{user:7}.sessions", "a", "b"},
                             {"EXPIRE", "{user:7}.sessions", "100"},
                             {"GET", "{user:7}.session"},
                             {"SCARD", "{user:7}.sessions"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[3].str, "s");
  EXPECT_EQ((*r)[4].integer, 2);
  auto waited = client->PipelineAndWait({{"SET", "{user:7}.a", "1"}, {"SET", "{user:7}.b", "2"}},
                                        milliseconds(1000));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->replicas_acked, 1);

  auto cross = client->Pipeline({{"SET", "a", "1"}, {"SET", "b", "2"}});
  ASSERT_FALSE(cross.ok());
  EXPECT_EQ(cross.error().code(), ErrorCode::kInvalidArgument);
  auto multi = client->Command({"DEL", "a", "b"});
  ASSERT_FALSE(multi.ok());
  EXPECT_EQ(multi.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(client->Command({"DEL", "{t}a", "{t}b"}).ok());
}

TEST_F(RedisClusterTest, AskAndMovedDuringSlotMigration) {
  auto client = MustConnect(ClusterOptions(*cluster_));
  ASSERT_TRUE(client);
  const std::string k1 = "{migrating}.one";
  const std::string k2 = "{migrating}.two";
  const int slot = KeySlot(k1);
  ASSERT_TRUE(client->Command({"SET", k1, "v1"}).ok());

  int source = cluster_->PrimaryPortForSlot(slot);
  int target = 0;
  for (int port : cluster_->PrimaryPorts()) {
    if (port != source) target = port;
  }
  ASSERT_NE(source, 0);
  ASSERT_NE(target, 0);
  std::string source_id = *RedisCall(source, {"CLUSTER", "MYID"});
  std::string target_id = *RedisCall(target, {"CLUSTER", "MYID"});
  std::string s = std::to_string(slot);
  ASSERT_EQ(*RedisCall(target, {"CLUSTER", "SETSLOT", s, "IMPORTING", source_id}), "OK");
  ASSERT_EQ(*RedisCall(source, {"CLUSTER", "SETSLOT", s, "MIGRATING", target_id}), "OK");

  // A new key of a migrating slot: the source answers ASK; the client sends
  // ASKING + the command to the target.
  auto set2 = client->Command({"SET", k2, "v2"});
  ASSERT_TRUE(set2.ok()) << set2.error().message();
  EXPECT_EQ(set2->str, "OK") << set2->str;
  EXPECT_EQ(*RedisCall(target, {"CLUSTER", "COUNTKEYSINSLOT", s}), "1");
  // The old key is still on the source.
  EXPECT_EQ(client->Command({"GET", k1})->str, "v1");
  // Move it; now the source answers ASK for it too.
  ASSERT_EQ(*RedisCall(source, {"MIGRATE", "127.0.0.1", std::to_string(target), "", "0", "5000",
                                "KEYS", k1}),
            "OK");
  EXPECT_EQ(client->Command({"GET", k1})->str, "v1");
  EXPECT_EQ(client->Command({"GET", k2})->str, "v2");

  // Finish the migration: the client's map is stale, MOVED updates it.
  for (int port : cluster_->ports()) {
    auto r = RedisCall(port, {"CLUSTER", "SETSLOT", s, "NODE", target_id});
    ASSERT_TRUE(r);
  }
  EXPECT_EQ(cluster_->PrimaryPortForSlot(slot), target);
  auto moved = client->Pipeline({{"GET", k1}, {"GET", k2}});
  ASSERT_TRUE(moved.ok()) << moved.error().message();
  EXPECT_EQ((*moved)[0].str, "v1");
  EXPECT_EQ((*moved)[1].str, "v2");
  ASSERT_TRUE(client->Command({"SET", k1, "v1b"}).ok());
  EXPECT_EQ(*RedisCall(target, {"CLUSTER", "COUNTKEYSINSLOT", s}), "2");

  // Give the slot back so the other tests see the original layout.
  for (int port : cluster_->ports()) {
    (void)RedisCall(port, {"CLUSTER", "SETSLOT", s, "NODE", target_id});
  }
  ASSERT_EQ(*RedisCall(target, {"CLUSTER", "SETSLOT", s, "MIGRATING", source_id}), "OK");
  ASSERT_EQ(*RedisCall(source, {"CLUSTER", "SETSLOT", s, "IMPORTING", target_id}), "OK");
  ASSERT_EQ(*RedisCall(target, {"MIGRATE", "127.0.0.1", std::to_string(source), "", "0", "5000",
                                "KEYS", k1, k2}),
            "OK");
  for (int port : cluster_->ports()) {
    (void)RedisCall(port, {"CLUSTER", "SETSLOT", s, "NODE", source_id});
  }
  EXPECT_EQ(client->Command({"GET", k2})->str, "v2");  // MOVED back
}

TEST_F(RedisClusterTest, PrimaryKilledUnderLoadLosesNoAcknowledgedWrite) {
  ClientOptions options = ClusterOptions(*cluster_);
  auto client = MustConnect(options);
  ASSERT_TRUE(client);

  // Keys whose slot lives on the primary we kill, and others.
  const std::string victim_key = "victim:0";
  const int victim_slot = KeySlot(victim_key);
  const int victim_port = cluster_->PrimaryPortForSlot(victim_slot);

  std::mutex mutex;
  std::map<std::string, std::string> acked;  // key -> value, acknowledged with a replica
  std::atomic<int> failures{0};
  std::atomic<int> unreplicated{0};
  std::atomic<int> ok_count{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> killed_at_ms{-1};
  Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100000 && !stop; ++i) {
        std::string key = "load:" + std::to_string(t) + ":" + std::to_string(i);
        std::string value = "v" + std::to_string(i);
        auto r = client->PipelineAndWait({{"SET", key, value, "EX", "600"}}, milliseconds(500));
        if (!r.ok() || r->replies[0].str != "OK") {
          ++failures;
          std::this_thread::sleep_for(milliseconds(20));
          continue;
        }
        ++ok_count;
        if (r->replicas_acked == 0) {
          ++unreplicated;  // not acknowledged by a replica: may be lost, not counted
          continue;
        }
        std::lock_guard lock(mutex);
        acked[key] = value;
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(700));
  killed_at_ms = MsSince(start);
  milliseconds failover = cluster_->KillPrimaryAndWaitFailover(victim_slot);
  // Keep the load on until writes to the failed-over slots succeed again
  // (bounded), then a little longer.
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < deadline) {
    auto r = client->Command({"SET", victim_key, "after"});
    if (r.ok() && r->str == "OK") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  int64_t client_recovered_ms = MsSince(start) - killed_at_ms.load();
  std::this_thread::sleep_for(milliseconds(500));
  stop = true;
  for (auto& th : threads) th.join();

  std::printf(
      "[          ] failover (kill -9 -> replica serves the slots, cluster ok): %lld ms; "
      "client writing to the victim's slots again %lld ms after the kill\n",
      static_cast<long long>(failover.count()), static_cast<long long>(client_recovered_ms));
  std::printf("[          ] writes: %d ok (%d without replica ack), %d failed; breaker %s\n",
              ok_count.load(), unreplicated.load(), failures.load(),
              resilience::BreakerStateName(client->breaker_state()));
  EXPECT_LT(client_recovered_ms, 15000);
  EXPECT_GT(acked.size(), 100u);

  // Every acknowledged write is readable after the failover.
  int lost = 0;
  for (const auto& [key, value] : acked) {
    Result<Reply> r = Error::Unavailable("not tried");
    for (int attempt = 0; attempt < 20; ++attempt) {
      r = client->Command({"GET", key});
      if (r.ok()) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
    ASSERT_TRUE(r.ok()) << r.error().message();
    if (r->str != value) ++lost;
  }
  EXPECT_EQ(lost, 0) << "of " << acked.size() << " acknowledged writes";

  // The old primary comes back as a replica.
  cluster_->StartNode(cluster_->IndexOfPort(victim_port));
  EXPECT_TRUE(cluster_->WaitHealthy(std::chrono::seconds(20)));
}

// Tracking (CLIENT TRACKING BCAST) has a subscriber on every primary; when a
// primary dies it stops being live, and it is live again, on the promoted
// replica, once the failover is done.
TEST_F(RedisClusterTest, TrackingCoversEveryPrimaryAndFollowsAFailover) {
  auto client = MustConnect(ClusterOptions(*cluster_));
  auto writer = MustConnect(ClusterOptions(*cluster_));
  ASSERT_TRUE(client && writer);
  auto listener = std::make_shared<RecordingListener>();
  client->TrackKeyPrefix("tracked:", listener);
  ASSERT_TRUE(listener->WaitLive(true)) << "tracking never became live";
  std::set<int> primaries;
  for (int i = 0; i < 30; ++i) {
    const std::string key = "tracked:" + std::to_string(i);
    primaries.insert(cluster_->PrimaryPortForSlot(KeySlot(key)));
    ASSERT_TRUE(writer->Command({"SET", key, "1"}).ok());
    EXPECT_TRUE(listener->WaitChanged(key)) << key << " was not reported";
  }
  EXPECT_EQ(primaries.size(), 3u) << "the keys should cover every primary";

  const std::string victim_key = "tracked:victim";
  const int victim_slot = KeySlot(victim_key);
  const int victim_port = cluster_->PrimaryPortForSlot(victim_slot);
  Clock::time_point killed = Clock::now();
  milliseconds failover = cluster_->KillPrimaryAndWaitFailover(victim_slot);
  ASSERT_TRUE(listener->WaitTimesLive(2, std::chrono::seconds(20)))
      << "tracking is not live again after the failover";
  std::printf("[          ] failover %lld ms; tracking live again %lld ms after the kill\n",
              static_cast<long long>(failover.count()), static_cast<long long>(MsSince(killed)));
  bool written = false;
  for (int i = 0; i < 100 && !written; ++i) {  // bounded: the writer may need its own refresh
    written = writer->Command({"SET", victim_key, "after"}).ok();
    if (!written) std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(written);
  EXPECT_TRUE(listener->WaitChanged(victim_key))
      << "the promoted primary's changes are not reported";

  cluster_->StartNode(cluster_->IndexOfPort(victim_port));
  EXPECT_TRUE(cluster_->WaitHealthy(std::chrono::seconds(20)));
}

TEST_F(RedisClusterTest, EveryNodeLostThenBack) {
  ClientOptions options = ClusterOptions(*cluster_);
  options.connect_timeout = milliseconds(300);
  options.command_timeout = milliseconds(300);
  options.max_attempts = 2;
  auto client = MustConnect(options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Command({"SET", "before", "1"}).ok());
  cluster_->KillAll();
  Clock::time_point start = Clock::now();
  auto r = client->Command({"GET", "before"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_LT(MsSince(start), 5000);
  EXPECT_FALSE(client->Ping().ok());

  cluster_->StartAll();
  ASSERT_TRUE(cluster_->WaitHealthy(std::chrono::seconds(30)));
  bool recovered = false;
  start = Clock::now();
  for (int i = 0; i < 100 && !recovered; ++i) {
    auto w = client->Command({"SET", "after", "1"});
    recovered = w.ok() && w->str == "OK";
    if (!recovered) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(recovered);
  std::printf("[          ] client writing again %lld ms after the cluster was healthy\n",
              static_cast<long long>(MsSince(start)));
  EXPECT_TRUE(client->Ping().ok());
}

}  // namespace
}  // namespace bulwark::redis
