// SessionCache alone: what may be kept, when it is forgotten, and the epoch
// that keeps an answer overtaken by an invalidation out. The same cache on
// real Redis: tests/integration/session_cache_test.cpp.
#include "storage/redis/session_cache.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "metrics/registry.hpp"

namespace bulwark {
namespace {

constexpr int64_t kNow = 1'800'000'000;

Session MakeSession(const std::string& hash, int64_t expires_at = kNow + 3600) {
  Session s;
  s.token_hash = hash;
  s.user_id = "user-" + hash;
  s.username = "name-" + hash;
  s.roles = {"user"};
  s.created_at = kNow - 10;
  s.expires_at = expires_at;
  return s;
}

SessionCacheOptions Options() {
  SessionCacheOptions o;
  o.key_prefix = "p:session:";
  o.max_entries = 1000;
  return o;
}

TEST(SessionCacheTest, KeepsNothingUntilTrackingIsLive) {
  SessionCache cache(Options());
  EXPECT_EQ(cache.Ticket(), 0u);
  cache.Keep(MakeSession("a"), cache.Ticket());
  EXPECT_FALSE(cache.Find("a", kNow));
  cache.OnTrackingChanged(true);
  const uint64_t ticket = cache.Ticket();
  ASSERT_NE(ticket, 0u);
  cache.Keep(MakeSession("a"), ticket);
  auto found = cache.Find("a", kNow);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->user_id, "user-a");
  EXPECT_EQ(found->roles, std::vector<std::string>{"user"});
  EXPECT_EQ(cache.size(), 1u);
}

TEST(SessionCacheTest, HitsShareOneSessionAndOutliveItsEviction) {
  SessionCache cache(Options());
  cache.OnTrackingChanged(true);
  cache.Keep(MakeSession("a"), cache.Ticket());
  auto first = cache.Find("a", kNow);
  auto second = cache.Find("a", kNow);
  ASSERT_TRUE(first);
  EXPECT_EQ(first.get(), second.get());  // no copy per hit
  // A hit being answered keeps its session while the cache drops the entry.
  cache.Forget("a");
  EXPECT_FALSE(cache.Find("a", kNow));
  EXPECT_EQ(first->user_id, "user-a");
}

TEST(SessionCacheTest, LosingTrackingForgetsEverything) {
  SessionCache cache(Options());
  cache.OnTrackingChanged(true);
  cache.Keep(MakeSession("a"), cache.Ticket());
  cache.Keep(MakeSession("b"), cache.Ticket());
  ASSERT_EQ(cache.size(), 2u);
  const uint64_t before_loss = cache.Ticket();
  cache.OnTrackingChanged(false);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.Find("a", kNow));
  EXPECT_EQ(cache.Ticket(), 0u);
  // Live again: a ticket taken before the loss still cannot keep anything.
  cache.OnTrackingChanged(true);
  cache.Keep(MakeSession("a"), before_loss);
  EXPECT_FALSE(cache.Find("a", kNow));
}

TEST(SessionCacheTest, AnAnswerOvertakenByAnInvalidationIsNotKept) {
  SessionCache cache(Options());
  cache.OnTrackingChanged(true);
  const uint64_t ticket = cache.Ticket();  // the GET is sent
  const std::vector<std::string> changed = {"p:session:a"};
  cache.OnKeysChanged(&changed);         // the key changes before its reply is handled
  cache.Keep(MakeSession("a"), ticket);  // the stale reply
  EXPECT_FALSE(cache.Find("a", kNow));
  // Any invalidation moves the epoch, not only one of the same key.
  const uint64_t second = cache.Ticket();
  cache.Forget("other");
  cache.Keep(MakeSession("a"), second);
  EXPECT_FALSE(cache.Find("a", kNow));
  cache.Keep(MakeSession("a"), cache.Ticket());
  EXPECT_TRUE(cache.Find("a", kNow));
}

TEST(SessionCacheTest, InvalidationsForgetTheirKeysOnly) {
  SessionCache cache(Options());
  cache.OnTrackingChanged(true);
  for (const char* hash : {"a", "b", "c"}) cache.Keep(MakeSession(hash), cache.Ticket());
  const std::vector<std::string> changed = {"p:session:a", "elsewhere:session:b",
                                            "p:session:", "p:sess"};
  cache.OnKeysChanged(&changed);
  EXPECT_FALSE(cache.Find("a", kNow));
  EXPECT_TRUE(cache.Find("b", kNow));  // not under this cache's prefix
  EXPECT_TRUE(cache.Find("c", kNow));
  cache.OnKeysChanged(nullptr);  // FLUSHALL
  EXPECT_FALSE(cache.Find("b", kNow));
  EXPECT_FALSE(cache.Find("c", kNow));
}

TEST(SessionCacheTest, NeverPastTheSessionsExpiryOrTheMaximumAge) {
  SessionCacheOptions options = Options();
  options.max_age = std::chrono::seconds(0);
  SessionCache no_age(options);
  no_age.OnTrackingChanged(true);
  no_age.Keep(MakeSession("a"), no_age.Ticket());
  EXPECT_FALSE(no_age.Find("a", kNow));

  SessionCache cache(Options());
  cache.OnTrackingChanged(true);
  cache.Keep(MakeSession("a", kNow + 5), cache.Ticket());
  EXPECT_TRUE(cache.Find("a", kNow + 4));
  EXPECT_FALSE(cache.Find("a", kNow + 5));
  EXPECT_EQ(cache.size(), 0u);  // dropped, not only hidden
}

TEST(SessionCacheTest, BoundedInSize) {
  SessionCacheOptions options = Options();
  options.max_entries = 64;
  SessionCache cache(options);
  cache.OnTrackingChanged(true);
  for (int i = 0; i < 2000; ++i) cache.Keep(MakeSession("h" + std::to_string(i)), cache.Ticket());
  EXPECT_LE(cache.size(), 64u);
  EXPECT_GT(cache.size(), 0u);

  options.max_entries = 0;  // off
  SessionCache off(options);
  off.OnTrackingChanged(true);
  off.Keep(MakeSession("a"), off.Ticket());
  EXPECT_FALSE(off.Find("a", kNow));
}

TEST(SessionCacheTest, MetricsCountHitsMissesAndInvalidations) {
  metrics::Registry registry;
  SessionCacheOptions options = Options();
  options.metrics = &registry;
  SessionCache cache(options);
  cache.OnTrackingChanged(true);
  cache.Keep(MakeSession("a"), cache.Ticket());
  ASSERT_TRUE(cache.Find("a", kNow));
  ASSERT_FALSE(cache.Find("b", kNow));
  cache.Forget("a");
  const std::string text = registry.RenderPrometheus();
  EXPECT_NE(text.find("bulwark_session_cache_hits_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("bulwark_session_cache_misses_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("bulwark_session_cache_invalidations_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("bulwark_session_cache_live 1"), std::string::npos) << text;
}

// Readers keep and find while another thread invalidates: run under the
// sanitizers, this is what shows the locking holds; afterwards nothing the
// invalidating thread forgot last may be left.
TEST(SessionCacheTest, ConcurrentKeepFindAndForget) {
  SessionCache cache(Options());
  cache.OnTrackingChanged(true);
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&cache, t] {
      for (int i = 0; i < 3000; ++i) {
        const std::string hash = "k" + std::to_string((i + t) % 50);
        const uint64_t ticket = cache.Ticket();
        cache.Keep(MakeSession(hash), ticket);
        (void)cache.Find(hash, kNow);
      }
    });
  }
  for (int i = 0; i < 3000; ++i) cache.Forget("k" + std::to_string(i % 50));
  for (std::thread& reader : readers) reader.join();
  for (int i = 0; i < 50; ++i) cache.Forget("k" + std::to_string(i));
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace bulwark
