// Contract of RefreshTokenStore (src/storage/refresh_token_store.hpp), run by
// StoreContractTest against every back-end that provides one (others skip).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/tokens.hpp"
#include "tests/contract/store_contract.hpp"

namespace bulwark::testing {
namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewHash() { return Sha256Hex(NewSessionToken()); }

RefreshFamily MakeFamily(int64_t now) {
  RefreshFamily f;
  f.family_id = NewUuid();
  f.user_id = NewUuid();
  f.client_id = "web";
  f.session_hash = NewHash();
  f.scope = "openid profile";
  f.current_hash = NewHash();
  f.created_at = now;
  f.rotated_at = now;
  f.idle_expires_at = now + 600;
  f.absolute_expires_at = now + 3600;
  return f;
}

RotateRequest Rotation(const RefreshFamily& f, const std::string& presented, int64_t now) {
  RotateRequest r;
  r.family_id = f.family_id;
  r.client_id = f.client_id;
  r.presented_hash = presented;
  r.next_hash = NewHash();
  r.now = now;
  r.idle_ttl_seconds = 600;
  r.grace_seconds = 10;
  return r;
}

#define REQUIRE_REFRESH_STORE()                                                 \
  do {                                                                          \
    if (!stores_.refresh_tokens) GTEST_SKIP() << "no refresh-token store here"; \
  } while (0)

TEST_P(StoreContractTest, RefreshFamilyRoundTrips) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  auto got = stores_.refresh_tokens->GetFamily(f.family_id, now);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->user_id, f.user_id);
  EXPECT_EQ(got->client_id, f.client_id);
  EXPECT_EQ(got->session_hash, f.session_hash);
  EXPECT_EQ(got->scope, f.scope);
  EXPECT_EQ(got->current_hash, f.current_hash);
  EXPECT_EQ(got->previous_hash, "");
  EXPECT_EQ(got->generation, 0);
  EXPECT_EQ(got->idle_expires_at, f.idle_expires_at);
  EXPECT_EQ(got->absolute_expires_at, f.absolute_expires_at);
  EXPECT_FALSE(got->revoked);
  EXPECT_TRUE(IsError(stores_.refresh_tokens->CreateFamily(f), ErrorCode::kAlreadyExists));
  EXPECT_TRUE(IsError(stores_.refresh_tokens->GetFamily(NewUuid(), now), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, RotatingTheCurrentTokenReplacesIt) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  RotateRequest first = Rotation(f, f.current_hash, now + 5);
  auto r = stores_.refresh_tokens->Rotate(first);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
  EXPECT_EQ(r->family.current_hash, first.next_hash);
  EXPECT_EQ(r->family.previous_hash, f.current_hash);
  EXPECT_EQ(r->family.generation, 1);
  EXPECT_EQ(r->family.rotated_at, now + 5);
  EXPECT_EQ(r->family.idle_expires_at, now + 605);
  // The new one rotates in turn.
  RotateRequest second = Rotation(f, first.next_hash, now + 20);
  r = stores_.refresh_tokens->Rotate(second);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
  EXPECT_EQ(r->family.generation, 2);
}

TEST_P(StoreContractTest, ThePreviousTokenWithinTheGraceWindowIsReissued) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  RotateRequest first = Rotation(f, f.current_hash, now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->Rotate(first)));
  // The response was lost: the client presents the old token again, 3 s later.
  RotateRequest retry = Rotation(f, f.current_hash, now + 3);
  auto r = stores_.refresh_tokens->Rotate(retry);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kGraceReissued);
  EXPECT_EQ(r->family.current_hash, retry.next_hash);
  EXPECT_FALSE(r->family.revoked);
  // The grace window runs from the rotation, not from the retry.
  RotateRequest late = Rotation(f, f.current_hash, now + 11);
  r = stores_.refresh_tokens->Rotate(late);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kReuseDetected);
}

TEST_P(StoreContractTest, ReuseOfARotatedTokenRevokesTheFamily) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  RotateRequest first = Rotation(f, f.current_hash, now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->Rotate(first)));
  RotateRequest second = Rotation(f, first.next_hash, now + 1);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->Rotate(second)));
  // The generation-0 token, two rotations old: stolen and replayed.
  auto r = stores_.refresh_tokens->Rotate(Rotation(f, f.current_hash, now + 2));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kReuseDetected);
  EXPECT_TRUE(r->family.revoked);
  // Even the legitimate current token is dead now.
  EXPECT_TRUE(IsError(stores_.refresh_tokens->Rotate(Rotation(f, second.next_hash, now + 3)),
                      ErrorCode::kNotFound));
  EXPECT_TRUE(
      IsError(stores_.refresh_tokens->GetFamily(f.family_id, now + 3), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, AnotherClientsRotationIsRefusedAndChangesNothing) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);  // issued to "web"
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  // Even a wrong token from another client must not revoke the family.
  for (const std::string& presented : {f.current_hash, NewHash()}) {
    RotateRequest q = Rotation(f, presented, now + 1);
    q.client_id = "mobile";
    auto r = stores_.refresh_tokens->Rotate(q);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->outcome, RotateOutcome::kWrongClient);
  }
  RotateRequest first_party = Rotation(f, f.current_hash, now + 1);
  first_party.client_id = "";
  auto r = stores_.refresh_tokens->Rotate(first_party);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kWrongClient);
  auto unchanged = stores_.refresh_tokens->GetFamily(f.family_id, now + 1);
  ASSERT_TRUE(IsOk(unchanged));
  EXPECT_EQ(unchanged->current_hash, f.current_hash);
  EXPECT_EQ(unchanged->generation, 0);
  EXPECT_FALSE(unchanged->revoked);
  // Its own client still rotates it.
  r = stores_.refresh_tokens->Rotate(Rotation(f, f.current_hash, now + 2));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
}

TEST_P(StoreContractTest, ManyConcurrentRotationsOfDistinctFamiliesAllRotate) {
  REQUIRE_REFRESH_STORE();
  // Exercises batched commits (SQLite) from many callers at once, blocking
  // and asynchronous alike: every family rotates exactly once.
  int64_t now = Now();
  constexpr int kFamilies = 64;
  std::vector<RefreshFamily> families;
  for (int i = 0; i < kFamilies; ++i) {
    families.push_back(MakeFamily(now));
    ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(families.back())));
  }
  std::atomic<int> rotated{0}, async_rotated{0}, async_calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kFamilies; i += 4) {
        RotateRequest q = Rotation(families[i], families[i].current_hash, now + 1);
        if (i % 2 == 0) {
          auto r = stores_.refresh_tokens->Rotate(q);
          if (r.ok() && r->outcome == RotateOutcome::kRotated) ++rotated;
        } else {
          stores_.refresh_tokens->RotateAsync(q, [&](Result<RotateResult> r) {
            if (r.ok() && r->outcome == RotateOutcome::kRotated) ++async_rotated;
            ++async_calls;
          });
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 500 && async_calls.load() < kFamilies / 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(async_calls.load(), kFamilies / 2);
  EXPECT_EQ(rotated.load() + async_rotated.load(), kFamilies);
  for (const RefreshFamily& f : families) {
    auto got = stores_.refresh_tokens->GetFamily(f.family_id, now + 1);
    ASSERT_TRUE(IsOk(got));
    EXPECT_EQ(got->generation, 1);
  }
}

TEST_P(StoreContractTest, AnUnknownTokenOfAKnownFamilyRevokesIt) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  auto r = stores_.refresh_tokens->Rotate(Rotation(f, NewHash(), now));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kReuseDetected);
  EXPECT_TRUE(IsError(stores_.refresh_tokens->Rotate(Rotation(f, f.current_hash, now)),
                      ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, RefreshFamiliesExpireWhenIdleAndAtTheirAbsoluteLimit) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);  // idle +600, absolute +3600
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  EXPECT_TRUE(IsOk(stores_.refresh_tokens->GetFamily(f.family_id, now + 599)));
  EXPECT_TRUE(
      IsError(stores_.refresh_tokens->GetFamily(f.family_id, now + 600), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.refresh_tokens->Rotate(Rotation(f, f.current_hash, now + 600)),
                      ErrorCode::kNotFound));

  // Used regularly it lives on, but never past the absolute limit.
  RefreshFamily g = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(g)));
  std::string current = g.current_hash;
  for (int64_t t = now + 500; t < now + 3600; t += 500) {
    RotateRequest q = Rotation(g, current, t);
    auto r = stores_.refresh_tokens->Rotate(q);
    ASSERT_TRUE(IsOk(r)) << "at +" << (t - now);
    EXPECT_LE(r->family.idle_expires_at, g.absolute_expires_at);
    current = q.next_hash;
  }
  EXPECT_TRUE(IsError(stores_.refresh_tokens->Rotate(Rotation(g, current, now + 3600)),
                      ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, RevokeFamilyIsIdempotent) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->RevokeFamily(f.family_id)));
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->RevokeFamily(f.family_id)));
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->RevokeFamily(NewUuid())));
  EXPECT_TRUE(IsError(stores_.refresh_tokens->GetFamily(f.family_id, now), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.refresh_tokens->Rotate(Rotation(f, f.current_hash, now)),
                      ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, ConcurrentRotationsOfOneTokenLetExactlyOneRotate) {
  REQUIRE_REFRESH_STORE();
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(f)));
  constexpr int kThreads = 8;
  std::atomic<int> rotated{0}, grace{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      RotateRequest q = Rotation(f, f.current_hash, now);
      q.grace_seconds = 0;  // no grace at all: the losers must not rotate too
      auto r = stores_.refresh_tokens->Rotate(q);
      if (r.ok() && r->outcome == RotateOutcome::kRotated) {
        ++rotated;
      } else if (r.ok() && r->outcome == RotateOutcome::kGraceReissued) {
        ++grace;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(rotated.load(), 1);
  // With a zero grace window, "the previous token, 0 s after" is still inside
  // it (now - rotated_at <= 0), so the losers are re-issued, not rotated.
  EXPECT_EQ(rotated.load() + grace.load() + other.load(), kThreads);
}

// TryRotateAsync's answer (at most 5 s), or Rotate's when it defers, as a
// caller would do from a worker thread. `deferred` counts the deferrals.
Result<RotateResult> TryRotate(RefreshTokenStore& store, const RotateRequest& q, int& deferred) {
  auto promise = std::make_shared<std::promise<std::optional<Result<RotateResult>>>>();
  auto answer = promise->get_future();
  store.TryRotateAsync(
      q, [promise](std::optional<Result<RotateResult>> r) { promise->set_value(std::move(r)); });
  if (answer.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    return Error::Internal("TryRotateAsync did not call back within 5 s");
  }
  std::optional<Result<RotateResult>> r = answer.get();
  if (r) return std::move(*r);
  ++deferred;
  return store.Rotate(q);
}

TEST_P(StoreContractTest, TryRotateAsyncFollowsTheRulesOfRotateOrDefersToIt) {
  REQUIRE_REFRESH_STORE();
  RefreshTokenStore& store = *stores_.refresh_tokens;
  int64_t now = Now();
  RefreshFamily f = MakeFamily(now);
  ASSERT_TRUE(IsOk(store.CreateFamily(f)));
  int deferred = 0;
  RotateRequest first = Rotation(f, f.current_hash, now + 1);
  auto r = TryRotate(store, first, deferred);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
  EXPECT_EQ(r->family.current_hash, first.next_hash);
  EXPECT_EQ(r->family.previous_hash, f.current_hash);
  EXPECT_EQ(r->family.generation, 1);
  RotateRequest second = Rotation(f, first.next_hash, now + 2);
  r = TryRotate(store, second, deferred);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
  EXPECT_EQ(r->family.generation, 2);
  // Another client changes nothing.
  RotateRequest stranger = Rotation(f, second.next_hash, now + 3);
  stranger.client_id = "mallory";
  r = TryRotate(store, stranger, deferred);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kWrongClient);
  EXPECT_EQ(r->family.current_hash, second.next_hash);
  // The first token again, past the grace window: the family is revoked.
  r = TryRotate(store, Rotation(f, f.current_hash, now + 30), deferred);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->outcome, RotateOutcome::kReuseDetected);
  EXPECT_TRUE(IsError(TryRotate(store, Rotation(f, second.next_hash, now + 31), deferred),
                      ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(TryRotate(store, Rotation(MakeFamily(now), NewHash(), now), deferred),
                      ErrorCode::kNotFound));
  std::printf("[          ] TryRotateAsync deferred %d of 6 rotations to Rotate\n", deferred);
}

// --- LoginStore: a login's session and refresh family, both or neither --------

Session LoginSession(int64_t now) {
  Session s;
  s.token_hash = NewHash();
  s.user_id = NewUuid();
  s.username = "alice";
  s.roles = {"user"};
  s.created_at = now;
  s.expires_at = now + 3600;
  s.client = "web";
  return s;
}

TEST_P(StoreContractTest, CreateLoginWritesTheSessionAndItsFamily) {
  if (!stores_.logins) GTEST_SKIP() << "no login store here";
  int64_t now = Now();
  Session s = LoginSession(now);
  RefreshFamily f = MakeFamily(now);
  f.user_id = s.user_id;
  f.session_hash = s.token_hash;
  ASSERT_TRUE(IsOk(stores_.logins->CreateLogin(s, f)));
  auto session = stores_.sessions->GetSession(s.token_hash, now);
  ASSERT_TRUE(IsOk(session));
  EXPECT_EQ(session->user_id, s.user_id);
  EXPECT_EQ(session->roles, s.roles);
  auto family = stores_.refresh_tokens->GetFamily(f.family_id, now);
  ASSERT_TRUE(IsOk(family));
  EXPECT_EQ(family->session_hash, s.token_hash);
  EXPECT_EQ(family->current_hash, f.current_hash);
}

TEST_P(StoreContractTest, CreateLoginLeavesNothingBehindWhenTheFamilyCollides) {
  if (!stores_.logins) GTEST_SKIP() << "no login store here";
  int64_t now = Now();
  RefreshFamily taken = MakeFamily(now);
  ASSERT_TRUE(IsOk(stores_.refresh_tokens->CreateFamily(taken)));
  Session s = LoginSession(now);
  RefreshFamily f = MakeFamily(now);
  f.family_id = taken.family_id;
  f.session_hash = s.token_hash;
  EXPECT_TRUE(IsError(stores_.logins->CreateLogin(s, f), ErrorCode::kAlreadyExists));
  EXPECT_TRUE(IsError(stores_.sessions->GetSession(s.token_hash, now), ErrorCode::kNotFound));
  auto family = stores_.refresh_tokens->GetFamily(taken.family_id, now);
  ASSERT_TRUE(IsOk(family));
  EXPECT_EQ(family->current_hash, taken.current_hash);  // untouched
}

TEST_P(StoreContractTest, CreateLoginRefusesADuplicateSessionAndWritesNoFamily) {
  if (!stores_.logins) GTEST_SKIP() << "no login store here";
  int64_t now = Now();
  Session s = LoginSession(now);
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(s)));
  RefreshFamily f = MakeFamily(now);
  f.session_hash = s.token_hash;
  EXPECT_TRUE(IsError(stores_.logins->CreateLogin(s, f), ErrorCode::kAlreadyExists));
  EXPECT_TRUE(IsError(stores_.refresh_tokens->GetFamily(f.family_id, now), ErrorCode::kNotFound));
  EXPECT_TRUE(IsOk(stores_.sessions->GetSession(s.token_hash, now)));  // the first one stands
}

}  // namespace
}  // namespace bulwark::testing
