// RedisSessionStore's session cache against a fake client whose tracking is
// live but never reports a change: what the store itself writes must then be
// forgotten by the store itself (read-your-writes on the replica that wrote),
// which a real Redis cannot show (its invalidation may win the race). The
// store on real Redis: tests/integration/session_cache_test.cpp.
#include "storage/redis/redis_session_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bulwark {
namespace {

using redis::Reply;

// GET/SET/DEL on a map; every other command answers :1 (SMEMBERS: an empty array).
class SilentTrackingClient final : public redis::Client {
 public:
  Result<Reply> Command(std::vector<std::string> args) override { return Run(args); }
  Result<std::vector<Reply>> Pipeline(std::vector<std::vector<std::string>> commands) override {
    std::vector<Reply> replies;
    for (const auto& c : commands) replies.push_back(Run(c));
    return replies;
  }
  Result<redis::WaitResult> PipelineAndWait(std::vector<std::vector<std::string>> commands,
                                            std::chrono::milliseconds) override {
    redis::WaitResult out;
    out.replies = *Pipeline(std::move(commands));
    return out;
  }
  void TryCommandAsync(std::vector<std::string> args, AsyncReply done) override { done(Run(args)); }
  void TrackKeyPrefix(std::string, std::weak_ptr<redis::KeyChangeListener> listener) override {
    // Live at once, and never a change reported.
    if (auto l = listener.lock()) l->OnTrackingChanged(true);
  }
  Status Ping() override { return Status::Ok(); }
  resilience::BreakerState breaker_state() const override {
    return resilience::BreakerState::kClosed;
  }

 private:
  Reply Run(const std::vector<std::string>& args) {
    Reply r;
    const std::string& cmd = args.at(0);
    if (cmd == "GET") {
      auto it = values_.find(args.at(1));
      if (it != values_.end()) {
        r.type = Reply::Type::kString;
        r.str = it->second;
      }
    } else if (cmd == "SET") {
      const bool nx = std::find(args.begin(), args.end(), "NX") != args.end();
      const bool xx = std::find(args.begin(), args.end(), "XX") != args.end();
      const bool exists = values_.contains(args.at(1));
      if ((nx && exists) || (xx && !exists)) return r;  // nil: not written
      values_[args.at(1)] = args.at(2);
      r.type = Reply::Type::kStatus;
      r.str = "OK";
    } else if (cmd == "DEL") {
      r.type = Reply::Type::kInteger;
      r.integer = static_cast<int64_t>(values_.erase(args.at(1)));
    } else if (cmd == "SMEMBERS") {
      r.type = Reply::Type::kArray;
    } else {
      r.type = Reply::Type::kInteger;
      r.integer = 1;
    }
    return r;
  }
  std::map<std::string, std::string> values_;
};

constexpr int64_t kNow = 1'800'000'000;

Session MakeSession(const std::string& hash) {
  Session s;
  s.token_hash = hash;
  s.user_id = "u-" + hash;
  s.username = "name";
  s.roles = {"user"};
  s.created_at = kNow - 10;
  s.expires_at = kNow + 3600;
  return s;
}

class RedisSessionStoreCacheTest : public ::testing::Test {
 protected:
  RedisSessionStoreCacheTest() {
    RedisSessionStoreOptions options;
    options.wait_for_replica = false;
    options.cache_max_entries = 100;
    store_ = std::make_unique<RedisSessionStore>(std::make_shared<SilentTrackingClient>(), options);
  }
  void CreateAndRead(const std::string& hash) {
    ASSERT_TRUE(store_->CreateSession(MakeSession(hash)).ok());
    ASSERT_TRUE(store_->GetSession(hash, kNow).ok());
    ASSERT_TRUE(store_->PeekSession(hash, kNow)) << "a session read while live is kept";
  }
  std::unique_ptr<RedisSessionStore> store_;
};

TEST_F(RedisSessionStoreCacheTest, ReadsAreKeptWhileTrackingIsLive) {
  ASSERT_TRUE(store_->cache_live());
  ASSERT_TRUE(store_->CreateSession(MakeSession("a")).ok());
  EXPECT_FALSE(store_->PeekSession("a", kNow)) << "written, never read: nothing kept";
  bool answered = false;
  store_->GetSessionAsync("a", kNow,
                          [&](std::optional<Result<Session>> s) { answered = s && s->ok(); });
  EXPECT_TRUE(answered);
  auto kept = store_->PeekSession("a", kNow);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->user_id, "u-a");
}

TEST_F(RedisSessionStoreCacheTest, OwnWritesAreForgottenWithoutAnyInvalidation) {
  CreateAndRead("logout");
  ASSERT_TRUE(store_->DeleteSession("logout").ok());
  EXPECT_FALSE(store_->PeekSession("logout", kNow)) << "a replica's own logout left it kept";

  CreateAndRead("renewed");
  ASSERT_TRUE(store_->TouchSession("renewed", kNow + 7200, kNow).ok());
  auto kept = store_->PeekSession("renewed", kNow);
  EXPECT_TRUE(!kept || kept->expires_at == kNow + 7200) << "the old expiry is still kept";

  CreateAndRead("restored");
  Session changed = MakeSession("restored");
  changed.roles = {"admin"};
  ASSERT_TRUE(store_->RestoreSession(changed).ok());
  kept = store_->PeekSession("restored", kNow);
  EXPECT_TRUE(!kept || kept->roles == std::vector<std::string>{"admin"});
}

}  // namespace
}  // namespace bulwark
