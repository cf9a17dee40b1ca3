// The Redis client in Sentinel mode against a real group (primary, replica,
// 3 sentinels): discovery, WAIT, loss of every data node, a primary killed
// under load (the client follows the new primary and no acknowledged write is
// lost), and +switch-master announcements followed without polling.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "metrics/registry.hpp"
#include "redis/redis_client.hpp"
#include "tests/integration/redis_test_support.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_servers.hpp"

namespace bulwark::redis {
namespace {

using std::chrono::milliseconds;
using testing::RedisSentinelGroup;

ClientOptions SentinelOptions(const RedisSentinelGroup& group) {
  ClientOptions o;
  o.mode = Mode::kSentinel;
  o.master_name = group.master_name();
  auto sentinels = ParseEndpoints(group.sentinels());
  EXPECT_TRUE(sentinels.ok());
  o.endpoints = *sentinels;
  o.connect_timeout = milliseconds(500);
  o.command_timeout = milliseconds(1000);
  return o;
}

// Starts a data node that was killed and waits (at most 20 s) until the
// sentinels have made it a replica; whether they did.
bool RestartAsReplica(RedisSentinelGroup& group, int index) {
  group.StartDataNode(index);
  for (int i = 0; i < 400; ++i) {
    auto role = group.data_node(index).Call({"ROLE"});
    if (role && role->rfind("slave", 0) == 0) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

class RedisSentinelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Clock::time_point start = Clock::now();
    group_ = new RedisSentinelGroup("bulwark");
    std::printf("[          ] sentinel group ready in %lld ms\n",
                static_cast<long long>(MsSince(start)));
  }
  static void TearDownTestSuite() {
    delete group_;
    group_ = nullptr;
  }
  static RedisSentinelGroup* group_;
};

RedisSentinelGroup* RedisSentinelTest::group_ = nullptr;

TEST_F(RedisSentinelTest, FindsThePrimaryThroughTheSentinels) {
  ClientOptions options = SentinelOptions(*group_);
  // A sentinel that does not answer is skipped.
  options.endpoints.insert(options.endpoints.begin(),
                           Endpoint{"127.0.0.1", static_cast<uint16_t>(testing::FreePort())});
  auto client = MustConnect(options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Command({"SET", "s", "1"}).ok());
  EXPECT_EQ(client->Command({"GET", "s"})->str, "1");
  int primary = group_->PrimaryIndex();
  ASSERT_GE(primary, 0);
  EXPECT_EQ(*group_->data_node(primary).Call({"GET", "s"}), "1");
  auto waited = client->PipelineAndWait({{"SET", "w", "1"}}, milliseconds(1000));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->replicas_acked, 1);
  EXPECT_EQ(*group_->data_node(1 - primary).Call({"GET", "w"}), "1");
  EXPECT_TRUE(client->Ping().ok());
}

TEST_F(RedisSentinelTest, UnknownMasterNameIsAClearError) {
  ClientOptions options = SentinelOptions(*group_);
  options.master_name = "no-such-master";
  auto client = Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(client.error().message().find("no-such-master"), std::string::npos)
      << client.error().message();
}

TEST_F(RedisSentinelTest, EveryDataNodeLostThenBack) {
  ClientOptions options = SentinelOptions(*group_);
  options.connect_timeout = milliseconds(300);
  options.command_timeout = milliseconds(300);
  options.max_attempts = 2;
  auto client = MustConnect(options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Command({"SET", "before", "1"}).ok());
  group_->KillDataNodes();
  Clock::time_point start = Clock::now();
  auto r = client->Command({"GET", "before"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_LT(MsSince(start), 3000);
  group_->StartDataNodes();
  bool recovered = false;
  start = Clock::now();
  for (int i = 0; i < 150 && !recovered; ++i) {
    auto w = client->Command({"SET", "after", "1"});
    recovered = w.ok() && w->str == "OK";
    if (!recovered) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(recovered);
  std::printf("[          ] client writing again %lld ms after the restart\n",
              static_cast<long long>(MsSince(start)));
  // Let the replica catch up before the next test.
  for (int i = 0; i < 200; ++i) {
    int primary = group_->PrimaryIndex();
    if (primary >= 0) {
      auto info = group_->data_node(1 - primary).Call({"INFO", "replication"});
      if (info && testing::RedisField(*info, "master_link_status") == "up") break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
}

TEST_F(RedisSentinelTest, PrimaryKilledUnderLoadClientFollowsNoAcknowledgedWriteLost) {
  auto client = MustConnect(SentinelOptions(*group_));
  ASSERT_TRUE(client);
  // WAIT needs the replica to be known as connected.
  for (int i = 0; i < 40; ++i) {
    auto probe = client->PipelineAndWait({{"SET", "probe", "1"}}, milliseconds(500));
    if (probe.ok() && probe->replicas_acked == 1) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  const int old_primary = group_->PrimaryIndex();
  ASSERT_GE(old_primary, 0);

  std::mutex mutex;
  std::map<std::string, std::string> acked;
  std::atomic<int> failures{0};
  std::atomic<int> unreplicated{0};
  std::atomic<int> ok_count{0};
  std::atomic<bool> stop{false};
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
          ++unreplicated;
          continue;
        }
        std::lock_guard lock(mutex);
        acked[key] = value;
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(700));
  Clock::time_point killed = Clock::now();
  milliseconds failover = group_->KillPrimaryAndWaitFailover();
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < deadline) {
    auto r = client->Command({"SET", "after-failover", "1"});
    if (r.ok() && r->str == "OK") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  int64_t client_recovered_ms = MsSince(killed);
  std::this_thread::sleep_for(milliseconds(500));
  stop = true;
  for (auto& th : threads) th.join();
  std::printf(
      "[          ] failover (kill -9 -> sentinels name the replica, ROLE master): %lld ms; "
      "client writing again %lld ms after the kill\n",
      static_cast<long long>(failover.count()), static_cast<long long>(client_recovered_ms));
  std::printf("[          ] writes: %d ok (%d without replica ack), %d failed; breaker %s\n",
              ok_count.load(), unreplicated.load(), failures.load(),
              resilience::BreakerStateName(client->breaker_state()));
  EXPECT_LT(client_recovered_ms, 15000);
  EXPECT_GT(acked.size(), 50u);
  EXPECT_EQ(group_->PrimaryIndex(), 1 - old_primary);

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
  EXPECT_EQ(*group_->data_node(1 - old_primary).Call({"GET", "after-failover"}), "1");

  // The old primary comes back; the sentinels make it a replica; the client
  // keeps writing to the new primary.
  Clock::time_point restarted = Clock::now();
  EXPECT_TRUE(RestartAsReplica(*group_, old_primary));
  std::printf("[          ] old primary back as a replica %lld ms after its restart\n",
              static_cast<long long>(MsSince(restarted)));
  auto w = client->Command({"SET", "after-rejoin", "1"});
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->str, "OK");
}

// Tracking follows the primary through a failover: not live once the primary
// dies, live again on the promoted replica, whose changes are then reported.
TEST_F(RedisSentinelTest, TrackingFollowsAFailover) {
  ClientOptions options = SentinelOptions(*group_);
  options.connect_timeout = milliseconds(300);
  options.command_timeout = milliseconds(500);
  auto client = MustConnect(options);
  ASSERT_TRUE(client);
  auto listener = std::make_shared<RecordingListener>();
  client->TrackKeyPrefix("tracked:", listener);
  ASSERT_TRUE(listener->WaitLive(true)) << "tracking never became live";
  const int old_primary = group_->PrimaryIndex();
  ASSERT_GE(old_primary, 0);
  ASSERT_TRUE(group_->data_node(old_primary).Call({"SET", "tracked:a", "1"}));
  EXPECT_TRUE(listener->WaitChanged("tracked:a"));

  Clock::time_point killed = Clock::now();
  milliseconds failover = group_->KillPrimaryAndWaitFailover();
  ASSERT_TRUE(listener->WaitTimesLive(2, std::chrono::seconds(20)))
      << "tracking is not live again after the failover";
  std::printf("[          ] failover %lld ms; tracking live again %lld ms after the kill\n",
              static_cast<long long>(failover.count()), static_cast<long long>(MsSince(killed)));
  ASSERT_TRUE(group_->data_node(1 - old_primary).Call({"SET", "tracked:b", "1"}));
  EXPECT_TRUE(listener->WaitChanged("tracked:b")) << "the new primary's changes are not reported";

  // Leave the group as it was: the old primary back, as a replica.
  EXPECT_TRUE(RestartAsReplica(*group_, old_primary));
}

// A failover is followed as soon as a sentinel announces it (+switch-master),
// not when a poll or a failed command finds the old primary gone: with the
// poll an hour apart, one attempt per command and no command sent while the
// sentinels fail over, the client's next command lands on the new primary.
TEST_F(RedisSentinelTest, SwitchMasterAnnouncementIsFollowedWithoutPolling) {
  metrics::Registry registry;
  ClientOptions options = SentinelOptions(*group_);
  // A sentinel that does not answer is not counted as a subscription.
  options.endpoints.push_back(Endpoint{"127.0.0.1", static_cast<uint16_t>(testing::FreePort())});
  options.metrics = &registry;
  options.maintenance_interval = std::chrono::hours(1);
  options.max_attempts = 1;
  auto client = MustConnect(options);
  ASSERT_TRUE(client);
  metrics::Gauge& subscriptions = registry.GetGauge("bulwark_redis_sentinel_subscriptions", "");
  metrics::Counter& followed =
      registry.GetCounter("bulwark_redis_switch_master_followed_total", "");
  for (int i = 0; i < 100 && subscriptions.Value() < 3; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(subscriptions.Value(), 3) << "subscribed to +switch-master on every live sentinel";
  auto before = client->Command({"SET", "announced:before", "1"});
  ASSERT_TRUE(before.ok()) << before.error().message();
  const int old_primary = group_->PrimaryIndex();
  ASSERT_GE(old_primary, 0);
  EXPECT_EQ(followed.Value(), 0);

  Clock::time_point killed = Clock::now();
  milliseconds failover = group_->KillPrimaryAndWaitFailover();
  for (int i = 0; i < 200 && followed.Value() < 1; ++i) {
    std::this_thread::sleep_for(milliseconds(25));
  }
  const int64_t followed_ms = MsSince(killed);
  ASSERT_GE(followed.Value(), 1) << "no +switch-master followed within 5 s of the failover";
  std::printf(
      "[          ] failover (kill -9 -> sentinels name the replica, ROLE master): %lld ms; "
      "client on the announced primary %lld ms after the kill\n",
      static_cast<long long>(failover.count()), static_cast<long long>(followed_ms));
  auto after = client->Command({"SET", "announced:after", "1"});
  ASSERT_TRUE(after.ok()) << after.error().message();
  EXPECT_EQ(after->str, "OK");
  EXPECT_EQ(*group_->data_node(1 - old_primary).Call({"GET", "announced:after"}), "1");
  EXPECT_EQ(subscriptions.Value(), 3) << "the sentinels' subscriptions outlive the failover";

  // Leave the group as it was: the old primary back, as a replica.
  EXPECT_TRUE(RestartAsReplica(*group_, old_primary));
}

}  // namespace
}  // namespace bulwark::redis
