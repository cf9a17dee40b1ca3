// KeyService: the rotation timeline driven by a FakeClock over the memory store.
#include "service/key_service.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "crypto/tokens.hpp"
#include "tests/support/memory_store.hpp"

namespace bulwark {
namespace {

using testing::MemoryStore;

constexpr int64_t kStart = 1'700'000'000;

KeyServiceOptions Options() {
  KeyServiceOptions o;
  o.jwks_max_age_seconds = 300;
  o.access_token_ttl_seconds = 300;
  o.leeway_seconds = 30;
  o.refresh_interval_seconds = 5;
  return o;
}

jwt::Claims ClaimsAt(int64_t now) {
  jwt::Claims c;
  c.iss = "https://issuer.test";
  c.sub = "user-1";
  c.aud = {"https://issuer.test"};
  c.iat = now;
  c.exp = now + 300;
  c.jti = RandomHex(16);
  return c;
}

Status ValidateAt(const KeyService& keys, const std::string& token, int64_t now) {
  jwt::ValidationOptions v;
  v.issuer = "https://issuer.test";
  v.audience = "https://issuer.test";
  v.now = now;
  v.leeway_seconds = 30;
  auto claims = jwt::Validate(token, keys.Current()->keys, v);
  if (!claims.ok()) return claims.error();
  return Status::Ok();
}

std::string ActiveKid(const KeyService& keys) {
  auto ring = keys.Current();
  return ring->signer ? ring->signer->kid() : "";
}

int CountState(MemoryStore& store, KeyState state) {
  auto keys = store.ListSigningKeys();
  int n = 0;
  for (const auto& k : *keys) n += k.state == state ? 1 : 0;
  return n;
}

class KeyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { InitCrypto(); }
  std::shared_ptr<MemoryStore> store_ = std::make_shared<MemoryStore>();
  FakeClock clock_{kStart};
};

TEST_F(KeyServiceTest, FirstRefreshBootstrapsOneActiveKey) {
  KeyService keys(*store_, clock_, Options());
  EXPECT_FALSE(keys.Current()->signer.has_value());
  ASSERT_TRUE(keys.Refresh().ok());
  ASSERT_TRUE(keys.Current()->signer.has_value());
  EXPECT_EQ(keys.Current()->keys.size(), 1u);
  EXPECT_EQ(CountState(*store_, KeyState::kActive), 1);
  // The JWKS and the listing carry no private material.
  EXPECT_EQ(keys.Current()->jwks.find("\"d\""), std::string::npos);
  auto listed = keys.List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].private_key.empty());
  // A second refresh changes nothing.
  std::string kid = ActiveKid(keys);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_EQ(ActiveKid(keys), kid);
  EXPECT_EQ(store_->ListSigningKeys()->size(), 1u);
}

TEST_F(KeyServiceTest, ReplicasBootstrappingAtOnceAgreeOnOneKey) {
  constexpr int kReplicas = 3;
  std::vector<std::unique_ptr<KeyService>> replicas;
  for (int i = 0; i < kReplicas; ++i) {
    replicas.push_back(std::make_unique<KeyService>(*store_, clock_, Options()));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (auto& r : replicas) {
    threads.emplace_back([&failures, &r] {
      if (!r->Refresh().ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->ListSigningKeys()->size(), 1u);
  for (auto& r : replicas) EXPECT_EQ(ActiveKid(*r), ActiveKid(*replicas[0]));
  EXPECT_FALSE(ActiveKid(*replicas[0]).empty());
}

TEST_F(KeyServiceTest, NextKeyIsPublishedBeforeItSignsAndRetiredKeyStaysUntilTokensExpire) {
  KeyService keys(*store_, clock_, Options());
  KeyService other(*store_, clock_, Options());  // a second replica
  ASSERT_TRUE(keys.Refresh().ok());
  ASSERT_TRUE(other.Refresh().ok());
  const std::string old_kid = ActiveKid(keys);

  auto next = keys.Rotate();
  ASSERT_TRUE(next.ok()) << next.error().message();
  EXPECT_EQ(next->state, KeyState::kNext);
  EXPECT_EQ(next->activated_at, kStart + keys.publish_delay());
  // Published at once, not signing.
  EXPECT_EQ(keys.Current()->keys.size(), 2u);
  EXPECT_TRUE(keys.Current()->keys.Contains(next->kid));
  EXPECT_EQ(ActiveKid(keys), old_kid);
  // The other replica publishes it on its next refresh.
  ASSERT_TRUE(other.Refresh().ok());
  EXPECT_TRUE(other.Current()->keys.Contains(next->kid));

  // A token signed by the old key just before the switch.
  clock_.Advance(keys.publish_delay() - 1);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_EQ(ActiveKid(keys), old_kid);
  auto old_token = keys.Sign(ClaimsAt(clock_.NowUnix()));
  ASSERT_TRUE(old_token.ok());

  clock_.Advance(1);
  ASSERT_TRUE(other.Refresh().ok());  // any replica may promote
  EXPECT_EQ(ActiveKid(other), next->kid);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_EQ(ActiveKid(keys), next->kid);
  auto old_record = store_->GetSigningKey(old_kid);
  ASSERT_TRUE(old_record.ok());
  EXPECT_EQ(old_record->state, KeyState::kRetired);
  EXPECT_EQ(old_record->expires_at, clock_.NowUnix() + keys.retire_lifetime());
  EXPECT_EQ(CountState(*store_, KeyState::kActive), 1);

  auto new_token = keys.Sign(ClaimsAt(clock_.NowUnix()));
  ASSERT_TRUE(new_token.ok());
  EXPECT_TRUE(ValidateAt(keys, *old_token, clock_.NowUnix()).ok());
  EXPECT_TRUE(ValidateAt(other, *new_token, clock_.NowUnix()).ok());

  // The retired key is published until every token it signed expired.
  clock_.Advance(keys.retire_lifetime() - 1);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_TRUE(keys.Current()->keys.Contains(old_kid));
  clock_.Advance(1);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_FALSE(keys.Current()->keys.Contains(old_kid));
  EXPECT_TRUE(store_->GetSigningKey(old_kid).error().IsNotFound());
  EXPECT_EQ(keys.Current()->keys.size(), 1u);
}

TEST_F(KeyServiceTest, ConcurrentRotationsAndPromotionsHaveOneWinner) {
  std::vector<std::unique_ptr<KeyService>> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas.push_back(std::make_unique<KeyService>(*store_, clock_, Options()));
  }
  ASSERT_TRUE(replicas[0]->Refresh().ok());
  const std::string first = ActiveKid(*replicas[0]);
  std::atomic<int> failures{0};
  {
    std::vector<std::thread> threads;
    for (auto& r : replicas) {
      threads.emplace_back([&failures, &r] {
        if (!r->Rotate().ok()) ++failures;
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountState(*store_, KeyState::kNext), 1);
  EXPECT_EQ(store_->ListSigningKeys()->size(), 2u);

  clock_.Advance(replicas[0]->publish_delay());
  {
    std::vector<std::thread> threads;
    for (auto& r : replicas) {
      threads.emplace_back([&failures, &r] {
        if (!r->Refresh().ok()) ++failures;
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountState(*store_, KeyState::kActive), 1);
  EXPECT_EQ(CountState(*store_, KeyState::kRetired), 1);
  EXPECT_EQ(CountState(*store_, KeyState::kNext), 0);
  for (auto& r : replicas) {
    ASSERT_TRUE(r->Refresh().ok());
    EXPECT_NE(ActiveKid(*r), first);
    EXPECT_EQ(ActiveKid(*r), ActiveKid(*replicas[0]));
  }
}

TEST_F(KeyServiceTest, AutomaticRotationStartsWhenTheActiveKeyIsOldEnough) {
  KeyServiceOptions o = Options();
  o.rotation_interval_seconds = 86400;
  KeyService keys(*store_, clock_, o);
  ASSERT_TRUE(keys.Refresh().ok());
  const std::string first = ActiveKid(keys);
  clock_.Advance(86399);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_EQ(CountState(*store_, KeyState::kNext), 0);
  clock_.Advance(1);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_EQ(CountState(*store_, KeyState::kNext), 1);
  EXPECT_EQ(ActiveKid(keys), first);
  clock_.Advance(keys.publish_delay());
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_NE(ActiveKid(keys), first);
}

TEST_F(KeyServiceTest, StoreOutageKeepsTheLastRing) {
  KeyService keys(*store_, clock_, Options());
  ASSERT_TRUE(keys.Refresh().ok());
  const std::string kid = ActiveKid(keys);
  store_->unavailable = true;
  Status st = keys.Refresh();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(ActiveKid(keys), kid);
  EXPECT_TRUE(keys.Sign(ClaimsAt(clock_.NowUnix())).ok());
  EXPECT_FALSE(keys.Rotate().ok());
  store_->unavailable = false;
}

TEST_F(KeyServiceTest, EdDsaKeys) {
  KeyServiceOptions o = Options();
  o.algorithm = jwt::Algorithm::kEdDSA;
  KeyService keys(*store_, clock_, o);
  ASSERT_TRUE(keys.Refresh().ok());
  EXPECT_EQ((*store_->ListSigningKeys())[0].algorithm, "EdDSA");
  auto token = keys.Sign(ClaimsAt(clock_.NowUnix()));
  ASSERT_TRUE(token.ok());
  // A fresh replica loads the private key from the store.
  KeyService other(*store_, clock_, o);
  ASSERT_TRUE(other.Refresh().ok());
  EXPECT_EQ(ActiveKid(other), ActiveKid(keys));
  auto again = other.Sign(ClaimsAt(clock_.NowUnix()));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(ValidateAt(keys, *again, clock_.NowUnix()).ok());
}

TEST_F(KeyServiceTest, PrivateKeysAreSealedUnderTheMasterKey) {
  MasterKey master = MasterKey::Generate();
  KeyService keys(*store_, clock_, Options(), MasterKeySealer(master));
  ASSERT_TRUE(keys.Refresh().ok());
  auto stored = store_->ListSigningKeys();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_TRUE((*stored)[0].private_key.starts_with("v1:"));
  EXPECT_EQ((*stored)[0].private_key.find("PRIVATE"), std::string::npos);

  KeyService same(*store_, clock_, Options(), MasterKeySealer(master));
  ASSERT_TRUE(same.Refresh().ok());
  EXPECT_EQ(ActiveKid(same), ActiveKid(keys));
  // Without the master key, or with another one, the key cannot sign (and is
  // still published, so tokens keep validating).
  KeyService none(*store_, clock_, Options());
  ASSERT_TRUE(none.Refresh().ok());
  EXPECT_FALSE(none.Current()->signer.has_value());
  EXPECT_EQ(none.Current()->keys.size(), 1u);
  KeyService other(*store_, clock_, Options(), MasterKeySealer(MasterKey::Generate()));
  ASSERT_TRUE(other.Refresh().ok());
  EXPECT_FALSE(other.Current()->signer.has_value());
}

TEST_F(KeyServiceTest, PlainKeysStoredBeforeAMasterKeyStillLoad) {
  KeyService plain(*store_, clock_, Options());
  ASSERT_TRUE(plain.Refresh().ok());
  KeyService sealed(*store_, clock_, Options(), MasterKeySealer(MasterKey::Generate()));
  ASSERT_TRUE(sealed.Refresh().ok());
  EXPECT_EQ(ActiveKid(sealed), ActiveKid(plain));
}

}  // namespace
}  // namespace bulwark
