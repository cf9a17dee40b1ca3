#include "storage/durable_session_store.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/memory_store.hpp"

namespace bulwark {
namespace {

using testing::MemoryStore;

constexpr int64_t kNow = 1'700'000'000;

Session MakeSession(const std::string& hash, const std::string& user) {
  Session s;
  s.token_hash = hash;
  s.user_id = user;
  s.username = "alice";
  s.created_at = kNow;
  s.expires_at = kNow + 3600;
  return s;
}

class DurableSessionStoreTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemoryStore> cache_ = std::make_shared<MemoryStore>();
  std::shared_ptr<MemoryStore> record_ = std::make_shared<MemoryStore>();
  int restores_ = 0;
  std::set<std::string> revoked_;
  bool marks_fail_ = false;
  DurableSessionStore store_{
      cache_, record_,
      DurableSessionStore::CacheHooks{
          [this](const Session& s) {
            ++restores_;
            return cache_->CreateSession(s);
          },
          [this](const std::string& hash) -> Status {
            if (marks_fail_) return Error::Unavailable("cache down");
            revoked_.insert(hash);
            return Status::Ok();
          },
          [this](const std::string& hash) -> Result<bool> { return revoked_.count(hash) > 0; }}};
};

TEST_F(DurableSessionStoreTest, CreateWritesBothParts) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  EXPECT_TRUE(cache_->GetSession("h1", kNow).ok());
  EXPECT_TRUE(record_->GetSession("h1", kNow).ok());
}

TEST_F(DurableSessionStoreTest, CreateSucceedsOnTheRecordAloneWhileTheCacheIsDown) {
  cache_->unavailable = true;
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  EXPECT_EQ(store_.counters().cache_write_failures, 1u);
  // Still verifiable while the cache is down, from the record.
  Result<Session> got = store_.GetSession("h1", kNow);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->user_id, "u1");
  EXPECT_EQ(store_.counters().cache_outage_reads, 1u);
}

TEST_F(DurableSessionStoreTest, CreateFailsWhenTheRecordIsDown) {
  record_->unavailable = true;
  Status st = store_.CreateSession(MakeSession("h1", "u1"));
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().IsUnavailable());
  cache_->unavailable = false;
  EXPECT_TRUE(cache_->GetSession("h1", kNow).error().IsNotFound());
}

TEST_F(DurableSessionStoreTest, ACacheMissIsAnsweredByTheRecordAndRestored) {
  ASSERT_TRUE(record_->CreateSession(MakeSession("lost", "u1")).ok());  // e.g. lost in failover
  Result<Session> got = store_.GetSession("lost", kNow);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(restores_, 1);
  EXPECT_TRUE(cache_->GetSession("lost", kNow).ok());
  // The next read is a cache hit: no second restore.
  ASSERT_TRUE(store_.GetSession("lost", kNow).ok());
  EXPECT_EQ(restores_, 1);
}

TEST_F(DurableSessionStoreTest, UnknownTokenIsNotFoundEvenWhileTheCacheIsDown) {
  cache_->unavailable = true;
  Result<Session> got = store_.GetSession("nope", kNow);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().IsNotFound());
}

TEST_F(DurableSessionStoreTest, BothPartsDownIsUnavailableNotNotFound) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  cache_->unavailable = true;
  record_->unavailable = true;
  Result<Session> got = store_.GetSession("h1", kNow);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().IsUnavailable());
}

TEST_F(DurableSessionStoreTest, RecordDownStillVerifiesFromTheCache) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  record_->unavailable = true;
  EXPECT_TRUE(store_.GetSession("h1", kNow).ok());
}

TEST_F(DurableSessionStoreTest, DeleteWhileTheCacheIsDownDeletesNothing) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  cache_->unavailable = true;
  marks_fail_ = true;
  Status st = store_.DeleteSession("h1");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().IsUnavailable());
  cache_->unavailable = false;
  marks_fail_ = false;
  EXPECT_TRUE(cache_->GetSession("h1", kNow).ok());
  EXPECT_TRUE(record_->GetSession("h1", kNow).ok());
  // Once the cache answers, the delete removes both.
  ASSERT_TRUE(store_.DeleteSession("h1").ok());
  EXPECT_TRUE(cache_->GetSession("h1", kNow).error().IsNotFound());
  EXPECT_TRUE(record_->GetSession("h1", kNow).error().IsNotFound());
}

TEST_F(DurableSessionStoreTest, ARevokedSessionIsNotRestoredWhenTheRecordDeleteFailed) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  record_->unavailable = true;
  Status st = store_.DeleteSession("h1");  // cache entry gone, record entry left
  ASSERT_FALSE(st.ok());
  record_->unavailable = false;
  ASSERT_TRUE(record_->GetSession("h1", kNow).ok());
  Result<Session> got = store_.GetSession("h1", kNow);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().IsNotFound());
  EXPECT_EQ(restores_, 0);
}

TEST_F(DurableSessionStoreTest, RevokingAllMarksEveryRecordedSession) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  ASSERT_TRUE(store_.CreateSession(MakeSession("h2", "u1")).ok());
  ASSERT_TRUE(store_.DeleteUserSessions("u1").ok());
  EXPECT_EQ(revoked_, (std::set<std::string>{"h1", "h2"}));
}

TEST_F(DurableSessionStoreTest, ListComesFromTheRecord) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  ASSERT_TRUE(record_->CreateSession(MakeSession("h2", "u1")).ok());  // not in the cache
  Result<std::vector<Session>> listed = store_.ListUserSessions("u1", kNow);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u);
}

TEST_F(DurableSessionStoreTest, DeleteUserSessionsClearsBothAndCountsTheRecord) {
  ASSERT_TRUE(store_.CreateSession(MakeSession("h1", "u1")).ok());
  ASSERT_TRUE(record_->CreateSession(MakeSession("h2", "u1")).ok());
  Result<int> deleted = store_.DeleteUserSessions("u1");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2);
  EXPECT_TRUE(cache_->GetSession("h1", kNow).error().IsNotFound());
}

// A cache that answers GetSessionAsync the way RedisSessionStore does: the
// stored answer, or nullopt when it is down.
class AsyncCache final : public SessionStore {
 public:
  explicit AsyncCache(std::shared_ptr<MemoryStore> memory) : memory_(std::move(memory)) {}
  Status CreateSession(const Session& s) override { return memory_->CreateSession(s); }
  Result<Session> GetSession(const std::string& h, int64_t now) override {
    return memory_->GetSession(h, now);
  }
  Status TouchSession(const std::string& h, int64_t e, int64_t now) override {
    return memory_->TouchSession(h, e, now);
  }
  Status DeleteSession(const std::string& h) override { return memory_->DeleteSession(h); }
  Result<std::vector<Session>> ListUserSessions(const std::string& u, int64_t now) override {
    return memory_->ListUserSessions(u, now);
  }
  Result<int> DeleteUserSessions(const std::string& u) override {
    return memory_->DeleteUserSessions(u);
  }
  Result<int> PurgeExpired(int64_t now) override { return memory_->PurgeExpired(now); }
  bool GetsSessionsWithoutBlocking() const override { return true; }
  void GetSessionAsync(const std::string& h, int64_t now, AsyncSession done) override {
    Result<Session> r = memory_->GetSession(h, now);
    if (!r.ok() && r.error().IsUnavailable()) return done(std::nullopt);
    done(std::move(r));
  }

 private:
  std::shared_ptr<MemoryStore> memory_;
};

std::optional<std::optional<Result<Session>>> AsyncAnswer(SessionStore& store,
                                                          const std::string& hash) {
  std::optional<std::optional<Result<Session>>> answer;
  store.GetSessionAsync(
      hash, kNow, [&answer](std::optional<Result<Session>> r) { answer.emplace(std::move(r)); });
  return answer;
}

TEST(DurableSessionStoreAsyncTest, AnswersCacheHitsAndLeavesEverythingElseToGetSession) {
  auto cache_memory = std::make_shared<MemoryStore>();
  auto record = std::make_shared<MemoryStore>();
  DurableSessionStore store(std::make_shared<AsyncCache>(cache_memory), record, {});
  EXPECT_TRUE(store.GetsSessionsWithoutBlocking());
  ASSERT_TRUE(store.CreateSession(MakeSession("both", "u1")).ok());
  ASSERT_TRUE(record->CreateSession(MakeSession("record-only", "u1")).ok());

  auto hit = AsyncAnswer(store, "both");
  ASSERT_TRUE(hit.has_value()) << "the callback must run";
  ASSERT_TRUE(hit->has_value());
  ASSERT_TRUE((*hit)->ok());
  EXPECT_EQ((**hit)->user_id, "u1");
  // A miss may be a session Redis lost: only GetSession may decide (record, restore).
  auto lost = AsyncAnswer(store, "record-only");
  ASSERT_TRUE(lost.has_value());
  EXPECT_FALSE(lost->has_value());
  auto unknown = AsyncAnswer(store, "unknown");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(unknown->has_value());
  cache_memory->unavailable = true;
  auto down = AsyncAnswer(store, "both");
  ASSERT_TRUE(down.has_value());
  EXPECT_FALSE(down->has_value());
  EXPECT_TRUE(store.GetSession("both", kNow).ok()) << "the record answers while the cache is down";
}

TEST(DurableSessionStoreAsyncTest, ABlockingCacheMeansNoAsyncPath) {
  DurableSessionStore store(std::make_shared<MemoryStore>(), std::make_shared<MemoryStore>(), {});
  EXPECT_FALSE(store.GetsSessionsWithoutBlocking());
  // The default still calls back (nullopt), so a caller that tries anyway is not left waiting.
  auto answer = AsyncAnswer(store, "any");
  ASSERT_TRUE(answer.has_value());
  EXPECT_FALSE(answer->has_value());
}

}  // namespace
}  // namespace bulwark
