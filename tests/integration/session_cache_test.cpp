// The session cache on a real Redis (docs/redis.md, "Session cache"): two
// RedisSessionStores on their own clients stand for two replicas. What one
// replica changes, the other forgets (Redis reports it); what a replica
// changes itself, it forgets at once; a lost Redis forgets everything.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "redis/redis_client.hpp"
#include "storage/redis/redis_session_store.hpp"
#include "tests/integration/redis_test_support.hpp"
#include "tests/support/redis_servers.hpp"

namespace bulwark {
namespace {

using redis::Clock;
using redis::MsSince;
using std::chrono::milliseconds;
using testing::RedisServer;

constexpr int64_t kNow = 1'800'000'000;

Session MakeSession(const std::string& hash, const std::string& user_id,
                    int64_t expires_at = kNow + 3600) {
  Session s;
  s.token_hash = hash;
  s.user_id = user_id;
  s.username = "name-" + user_id;
  s.roles = {"user"};
  s.created_at = kNow - 10;
  s.expires_at = expires_at;
  return s;
}

// One "replica": its own client and store, with the cache on.
struct Replica {
  std::shared_ptr<redis::Client> client;
  std::shared_ptr<RedisSessionStore> store;
};

Replica StartReplica(int port) {
  redis::ClientOptions options;
  options.endpoints = {redis::Endpoint{"127.0.0.1", static_cast<uint16_t>(port)}};
  options.connect_timeout = milliseconds(300);
  options.command_timeout = milliseconds(300);
  Replica replica;
  replica.client = redis::MustConnect(options);
  if (!replica.client) return replica;
  RedisSessionStoreOptions store;
  store.key_prefix = "cache-test:";
  store.wait_for_replica = false;
  store.cache_max_entries = 1000;
  replica.store = std::make_shared<RedisSessionStore>(replica.client, store);
  return replica;
}

bool WaitLive(const RedisSessionStore& store, bool live, milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (store.cache_live() != live) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// Polls (bounded) until the store no longer keeps the session; the time it took, or -1.
int64_t MsUntilForgotten(RedisSessionStore& store, const std::string& hash) {
  const Clock::time_point start = Clock::now();
  while (store.PeekSession(hash, kNow)) {
    if (MsSince(start) > 2000) return -1;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return MsSince(start);
}

class SessionCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = StartReplica(server_.port());
    b_ = StartReplica(server_.port());
    ASSERT_TRUE(a_.store && b_.store);
    ASSERT_TRUE(WaitLive(*a_.store, true, milliseconds(5000)));
    ASSERT_TRUE(WaitLive(*b_.store, true, milliseconds(5000)));
  }

  // B reads the session (and keeps it).
  void WarmB(const std::string& hash) {
    auto read = b_.store->GetSession(hash, kNow);
    ASSERT_TRUE(read.ok()) << read.error().message();
    ASSERT_TRUE(b_.store->PeekSession(hash, kNow)) << "B did not keep the session it read";
  }

  RedisServer server_;
  Replica a_;
  Replica b_;
};

TEST_F(SessionCacheTest, AReadSessionIsKeptAndAnsweredFromMemory) {
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h1", "u1")).ok());
  EXPECT_FALSE(b_.store->PeekSession("h1", kNow)) << "kept before it was ever read";
  WarmB("h1");
  auto kept = b_.store->PeekSession("h1", kNow);
  EXPECT_EQ(kept->user_id, "u1");
  EXPECT_EQ(kept->username, "name-u1");
  // Any change to the key counts, whoever makes it (here a RENAME by hand).
  ASSERT_TRUE(server_.Call({"RENAME", "cache-test:session:h1", "cache-test:elsewhere"}));
  EXPECT_GE(MsUntilForgotten(*b_.store, "h1"), 0) << "a RENAME of the key was not reported";
  EXPECT_FALSE(b_.store->PeekSession("h1", kNow + 7200)) << "kept past its expiry";
}

TEST_F(SessionCacheTest, WhatAnotherReplicaChangesIsForgotten) {
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h2", "u2")).ok());
  WarmB("h2");
  // A renews the session: B forgets, and its next read has the new expiry.
  ASSERT_TRUE(a_.store->TouchSession("h2", kNow + 7000, kNow).ok());
  const int64_t touch_ms = MsUntilForgotten(*b_.store, "h2");
  EXPECT_GE(touch_ms, 0) << "B still keeps the session A renewed";
  auto reread = b_.store->GetSession("h2", kNow);
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(reread->expires_at, kNow + 7000);
  // A logs the session out.
  ASSERT_TRUE(b_.store->PeekSession("h2", kNow));
  ASSERT_TRUE(a_.store->DeleteSession("h2").ok());
  const int64_t delete_ms = MsUntilForgotten(*b_.store, "h2");
  EXPECT_GE(delete_ms, 0) << "B still keeps the session A deleted";
  EXPECT_TRUE(b_.store->GetSession("h2", kNow).error().IsNotFound());
  // An administrator revokes every session of a user on A.
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h3", "u3")).ok());
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h4", "u3")).ok());
  WarmB("h3");
  WarmB("h4");
  ASSERT_TRUE(a_.store->DeleteUserSessions("u3").ok());
  EXPECT_GE(MsUntilForgotten(*b_.store, "h3"), 0);
  EXPECT_GE(MsUntilForgotten(*b_.store, "h4"), 0);
  std::printf(
      "[          ] forgotten on the other replica after: renewal %lld ms, logout %lld ms\n",
      static_cast<long long>(touch_ms), static_cast<long long>(delete_ms));
}

TEST_F(SessionCacheTest, WhatThisReplicaChangesIsForgottenAtOnce) {
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h5", "u5")).ok());
  WarmB("h5");
  ASSERT_TRUE(b_.store->DeleteSession("h5").ok());
  // No waiting: the replica's own logout must not leave its own cache behind
  // (whether Redis's invalidation or the store's own forgetting gets there
  // first; the store alone: src/storage/redis/redis_session_store_test.cpp).
  EXPECT_FALSE(b_.store->PeekSession("h5", kNow));
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h6", "u6")).ok());
  WarmB("h6");
  ASSERT_TRUE(b_.store->TouchSession("h6", kNow + 9000, kNow).ok());
  auto kept = b_.store->PeekSession("h6", kNow);
  EXPECT_TRUE(!kept || kept->expires_at == kNow + 9000);
}

TEST_F(SessionCacheTest, AsyncReadsAreKeptToo) {
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h7", "u7")).ok());
  std::promise<bool> answered;
  std::future<bool> future = answered.get_future();
  b_.store->GetSessionAsync("h7", kNow, [&answered](std::optional<Result<Session>> s) {
    answered.set_value(s.has_value() && s->ok());
  });
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_TRUE(future.get());
  EXPECT_TRUE(b_.store->PeekSession("h7", kNow));
}

TEST_F(SessionCacheTest, RedisLostForgetsEverythingAndKeepsNothingUntilBack) {
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h8", "u8")).ok());
  WarmB("h8");
  const Clock::time_point killed = Clock::now();
  server_.Kill();
  ASSERT_TRUE(WaitLive(*b_.store, false, milliseconds(2000)));
  std::printf("[          ] not live %lld ms after Redis was killed\n",
              static_cast<long long>(MsSince(killed)));
  EXPECT_FALSE(b_.store->PeekSession("h8", kNow)) << "a session kept through a Redis outage";
  server_.Start();  // empty: the session is gone with the process
  ASSERT_TRUE(WaitLive(*b_.store, true, milliseconds(10000))) << "not live again";
  ASSERT_TRUE(a_.store->CreateSession(MakeSession("h9", "u9")).ok());
  WarmB("h9");
}

}  // namespace
}  // namespace bulwark
