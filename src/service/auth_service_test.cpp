#include "service/auth_service.hpp"

#include <memory>

#include <gtest/gtest.h>

#include "crypto/tokens.hpp"
#include "service/admin_service.hpp"
#include "tests/support/memory_refresh_token_store.hpp"
#include "tests/support/memory_store.hpp"

namespace bulwark {
namespace {

class AuthServiceTest : public ::testing::Test {
 protected:
  AuthServiceTest()
      : store_(std::make_shared<testing::MemoryStore>()),
        hasher_(Argon2Params{1, 8 * 1024}),
        auth_(*store_, *store_, *store_, hasher_, clock_, metrics_, AuthOptions{3600, false}),
        admin_(*store_, *store_, *store_, *store_, hasher_, clock_) {
    InitCrypto();
    auto alice = admin_.CreateUser(NewUser{"alice", "alice-password", "", {"admin"}});
    EXPECT_TRUE(alice.ok());
    alice_id_ = alice->user.id;
  }

  LoginRequest Request(std::string user, std::string password) {
    return LoginRequest{std::move(user), std::move(password), "127.0.0.1", "test", ""};
  }

  FakeClock clock_;
  metrics::Registry metrics_;
  std::shared_ptr<testing::MemoryStore> store_;
  PasswordHasher hasher_;
  AuthService auth_;
  AdminService admin_;
  std::string alice_id_;
};

TEST_F(AuthServiceTest, LoginCreatesASessionStoredOnlyByHash) {
  auto login = auth_.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(login.ok());
  EXPECT_TRUE(LooksLikeSessionToken(login->session_token));
  EXPECT_EQ(login->session.token_hash, Sha256Hex(login->session_token));
  EXPECT_EQ(login->session.expires_at, clock_.NowUnix() + 3600);
  EXPECT_EQ(login->session.roles, std::vector<std::string>{"admin"});
  auto stored = store_->GetSession(Sha256Hex(login->session_token), clock_.NowUnix());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->user_id, alice_id_);
  EXPECT_FALSE(store_->GetSession(login->session_token, clock_.NowUnix()).ok());
}

TEST_F(AuthServiceTest, UnknownUserWrongPasswordAndDisabledAreTheSameError) {
  auto unknown = auth_.Login(Request("nobody", "alice-password"));
  auto wrong = auth_.Login(Request("alice", "wrong-password"));
  ASSERT_TRUE(admin_.UpdateUser(alice_id_, UserUpdate{std::nullopt, true, std::nullopt}).ok());
  auto disabled = auth_.Login(Request("alice", "alice-password"));
  for (const auto* r : {&unknown, &wrong, &disabled}) {
    ASSERT_FALSE(r->ok());
    EXPECT_EQ(r->error().code(), ErrorCode::kUnauthorized);
    EXPECT_EQ(r->error().message(), unknown.error().message());
  }
}

TEST_F(AuthServiceTest, StoreOutageIsUnavailableNeverUnauthorized) {
  auto login = auth_.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(login.ok());
  store_->unavailable = true;
  auto verify = auth_.Verify(login->session_token);
  ASSERT_FALSE(verify.ok());
  EXPECT_EQ(verify.error().code(), ErrorCode::kUnavailable);
  auto again = auth_.Login(Request("alice", "alice-password"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(auth_.Logout(login->session_token).error().code(), ErrorCode::kUnavailable);
  store_->unavailable = false;
  EXPECT_TRUE(auth_.Verify(login->session_token).ok());  // nothing was deleted
}

// A session store that keeps in memory every session it holds, as the Redis
// store with a live session cache does (PeekSession); the rest is MemoryStore's.
class KeepingSessionStore final : public SessionStore {
 public:
  explicit KeepingSessionStore(SessionStore& inner) : inner_(inner) {}
  Status CreateSession(const Session& s) override { return inner_.CreateSession(s); }
  Result<Session> GetSession(const std::string& h, int64_t now) override {
    return inner_.GetSession(h, now);
  }
  Status TouchSession(const std::string& h, int64_t e, int64_t now) override {
    return inner_.TouchSession(h, e, now);
  }
  Status DeleteSession(const std::string& h) override { return inner_.DeleteSession(h); }
  Result<std::vector<Session>> ListUserSessions(const std::string& u, int64_t now) override {
    return inner_.ListUserSessions(u, now);
  }
  Result<int> DeleteUserSessions(const std::string& u) override {
    return inner_.DeleteUserSessions(u);
  }
  Result<int> PurgeExpired(int64_t now) override { return inner_.PurgeExpired(now); }
  std::shared_ptr<const Session> PeekSession(const std::string& h, int64_t now) override {
    ++peeks;
    auto s = inner_.GetSession(h, now);
    if (!s.ok()) return nullptr;
    return std::make_shared<const Session>(std::move(*s));
  }
  int peeks = 0;

 private:
  SessionStore& inner_;
};

// A session the store keeps current in memory is answered without blocking;
// one due for a sliding renewal is not (the renewal writes, on the store pool).
TEST_F(AuthServiceTest, KeptSessionAnswersSessionsTheStoreKeeps) {
  KeepingSessionStore keeping(*store_);
  AuthService plain(*store_, *store_, keeping, hasher_, clock_, metrics_, AuthOptions{3600, false});
  auto login = plain.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(login.ok());
  auto quick = plain.KeptSession(login->session_token);
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->user_id, alice_id_);
  EXPECT_EQ(quick->username, "alice");
  EXPECT_EQ(keeping.peeks, 1);
  // Unknown to the store's memory: ask the store (never a 401 from here).
  EXPECT_FALSE(plain.KeptSession(std::string(43, 'A')));
  EXPECT_FALSE(plain.KeptSession("not-a-session-token"));
  // Sessions never come from the JWT path.
  EXPECT_FALSE(plain.VerifyWithoutBlocking(login->session_token).has_value());
  EXPECT_EQ(keeping.peeks, 2) << "only session-shaped tokens reach the store";

  AuthService sliding(*store_, *store_, keeping, hasher_, clock_, metrics_,
                      AuthOptions{3600, true});
  auto second = sliding.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(sliding.KeptSession(second->session_token));
  clock_.Advance(2000);  // less than half the lifetime left: due for renewal
  EXPECT_FALSE(sliding.KeptSession(second->session_token));
  EXPECT_GT(sliding.Verify(second->session_token)->expires_at, second->session.expires_at);
  EXPECT_TRUE(sliding.KeptSession(second->session_token));  // renewed
}

TEST_F(AuthServiceTest, SessionsExpireAtTheirTtl) {
  auto login = auth_.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(login.ok());
  clock_.Advance(3599);
  EXPECT_TRUE(auth_.Verify(login->session_token).ok());
  clock_.Advance(1);
  auto expired = auth_.Verify(login->session_token);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code(), ErrorCode::kUnauthorized);
}

TEST_F(AuthServiceTest, SlidingRenewalExtendsAfterHalfTheLifetime) {
  AuthService sliding(*store_, *store_, *store_, hasher_, clock_, metrics_,
                      AuthOptions{3600, true});
  auto login = sliding.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(login.ok());
  clock_.Advance(1000);
  EXPECT_EQ(sliding.Verify(login->session_token)->expires_at, login->session.expires_at);
  clock_.Advance(1000);  // 2000 s in: less than half left
  EXPECT_EQ(sliding.Verify(login->session_token)->expires_at, clock_.NowUnix() + 3600);
  clock_.Advance(3000);  // past the original expiry, within the renewed one
  EXPECT_TRUE(sliding.Verify(login->session_token).ok());
}

TEST_F(AuthServiceTest, LogoutIsIdempotentAndMalformedTokensAreRejectedEarly) {
  auto login = auth_.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(login.ok());
  EXPECT_TRUE(auth_.Logout(login->session_token).ok());
  EXPECT_TRUE(auth_.Logout(login->session_token).ok());
  EXPECT_EQ(auth_.Verify(login->session_token).error().code(), ErrorCode::kUnauthorized);
  store_->unavailable = true;  // malformed tokens never reach the store
  EXPECT_EQ(auth_.Verify("short").error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(auth_.Verify(std::string(43, '*')).error().code(), ErrorCode::kUnauthorized);
}

TEST_F(AuthServiceTest, OversizedCredentialsAreInvalidArguments) {
  auto r = auth_.Login(Request("alice", std::string(kMaxPasswordBytes + 1, 'x')));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(auth_.Login(Request("", "x")).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(AuthServiceTest, LoginRehashesWhenParametersChange) {
  PasswordHasher stronger(Argon2Params{2, 8 * 1024});
  AuthService upgraded(*store_, *store_, *store_, stronger, clock_, metrics_, AuthOptions{});
  std::string before = store_->GetUserById(alice_id_)->password_hash;
  ASSERT_TRUE(upgraded.Login(Request("alice", "alice-password")).ok());
  std::string after = store_->GetUserById(alice_id_)->password_hash;
  EXPECT_NE(before, after);
  EXPECT_FALSE(stronger.NeedsRehash(after));
  EXPECT_TRUE(upgraded.Login(Request("alice", "alice-password")).ok());
}

TEST_F(AuthServiceTest, LoginStepsTouchTheStoresOnlyOutsideCheckPassword) {
  PasswordHasher stronger(Argon2Params{2, 8 * 1024});  // so that CheckPassword also rehashes
  AuthService upgraded(*store_, *store_, *store_, stronger, clock_, metrics_, AuthOptions{});
  const std::string before = store_->GetUserById(alice_id_)->password_hash;
  auto attempt = upgraded.PrepareLogin(Request("alice", "alice-password"));
  ASSERT_TRUE(attempt.ok());
  store_->unavailable = true;  // the hashing step must not need a store
  EXPECT_TRUE(upgraded.CheckPassword(*attempt).ok());
  store_->unavailable = false;
  EXPECT_EQ(store_->GetUserById(alice_id_)->password_hash, before) << "stored by CompleteLogin";
  auto login = upgraded.CompleteLogin(*attempt);
  ASSERT_TRUE(login.ok());
  EXPECT_TRUE(upgraded.Verify(login->session_token).ok());
  const std::string after = store_->GetUserById(alice_id_)->password_hash;
  EXPECT_NE(after, before);
  EXPECT_FALSE(stronger.NeedsRehash(after));
}

TEST_F(AuthServiceTest, StoreOutageInEitherStoreStepIsUnavailable) {
  store_->unavailable = true;
  auto prepared = auth_.PrepareLogin(Request("alice", "alice-password"));
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code(), ErrorCode::kUnavailable);
  store_->unavailable = false;
  auto attempt = auth_.PrepareLogin(Request("alice", "alice-password"));
  ASSERT_TRUE(attempt.ok());
  ASSERT_TRUE(auth_.CheckPassword(*attempt).ok());
  store_->unavailable = true;
  auto completed = auth_.CompleteLogin(*attempt);
  ASSERT_FALSE(completed.ok());
  EXPECT_EQ(completed.error().code(), ErrorCode::kUnavailable);
}

TEST_F(AuthServiceTest, UnknownUserFailsInCheckPasswordLikeAWrongPassword) {
  auto unknown = auth_.PrepareLogin(Request("nobody", "alice-password"));
  ASSERT_TRUE(unknown.ok()) << "an unknown user still goes on to the hashing step";
  auto wrong = auth_.PrepareLogin(Request("alice", "wrong-password"));
  ASSERT_TRUE(wrong.ok());
  const Status unknown_check = auth_.CheckPassword(*unknown);
  const Status wrong_check = auth_.CheckPassword(*wrong);
  ASSERT_FALSE(unknown_check.ok());
  ASSERT_FALSE(wrong_check.ok());
  EXPECT_EQ(unknown_check.error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(unknown_check.error().message(), wrong_check.error().message());
  EXPECT_EQ(auth_.CompleteLogin(*unknown).error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(auth_.CompleteLogin(*wrong).error().code(), ErrorCode::kUnauthorized);
}

TEST_F(AuthServiceTest, CompleteLoginNeedsAnAcceptedCheckAndCreatesOneSession) {
  LoginAttempt never_checked;
  EXPECT_EQ(auth_.CompleteLogin(never_checked).error().code(), ErrorCode::kUnauthorized);
  auto unchecked = auth_.PrepareLogin(Request("alice", "alice-password"));
  ASSERT_TRUE(unchecked.ok());
  EXPECT_EQ(auth_.CompleteLogin(*unchecked).error().code(), ErrorCode::kUnauthorized);
  ASSERT_TRUE(auth_.CheckPassword(*unchecked).ok());
  EXPECT_TRUE(auth_.CompleteLogin(*unchecked).ok());
  EXPECT_EQ(auth_.CompleteLogin(*unchecked).error().code(), ErrorCode::kUnauthorized);
}

TEST_F(AuthServiceTest, AdminPasswordChangeAndDeleteEndSessions) {
  auto login = auth_.Login(Request("alice", "alice-password"));
  ASSERT_TRUE(login.ok());
  UserUpdate update;
  update.password = "another-password";
  ASSERT_TRUE(admin_.UpdateUser(alice_id_, update).ok());
  EXPECT_FALSE(auth_.Verify(login->session_token).ok());
  auto relogin = auth_.Login(Request("alice", "another-password"));
  ASSERT_TRUE(relogin.ok());
  ASSERT_TRUE(admin_.DeleteUser(alice_id_).ok());
  EXPECT_FALSE(auth_.Verify(relogin->session_token).ok());
}

TEST(AdminValidation, Names) {
  EXPECT_TRUE(IsValidUsername("alice.b@example-1"));
  EXPECT_FALSE(IsValidUsername(""));
  EXPECT_FALSE(IsValidUsername("has space"));
  EXPECT_FALSE(IsValidUsername(std::string(65, 'a')));
  EXPECT_TRUE(IsValidRoleName("billing:read"));
  EXPECT_FALSE(IsValidRoleName("a/b"));
  EXPECT_TRUE(IsValidConfigKey("login.banner"));
  EXPECT_FALSE(IsValidConfigKey("x\"y"));
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

// JWT access tokens: issued at login, verified locally, revoked by logout.
class AccessTokenTest : public ::testing::Test {
 protected:
  AccessTokenTest()
      : store_(std::make_shared<testing::MemoryStore>()),
        hasher_(Argon2Params{1, 8 * 1024}),
        keys_(*store_, clock_, KeyServiceOptions{}),
        verifier_(keys_, *store_, clock_, metrics_,
                  AccessTokenVerifierOptions{"https://auth.test", 30, 100,
                                             std::chrono::milliseconds(1000)}),
        auth_(*store_, *store_, *store_, hasher_, clock_, metrics_, AuthOptions{3600, false}),
        admin_(*store_, *store_, *store_, *store_, hasher_, clock_) {
    InitCrypto();
    EXPECT_TRUE(keys_.Refresh().ok());
    auth_.EnableAccessTokens(keys_, verifier_, AccessTokenOptions{"https://auth.test", "", 300});
    auto alice = admin_.CreateUser(NewUser{"alice", "alice-password", "", {"admin"}});
    EXPECT_TRUE(alice.ok());
    alice_id_ = alice->user.id;
  }

  std::string LoginJwt() {
    auto login = auth_.Login(LoginRequest{"alice", "alice-password", "127.0.0.1", "test", ""});
    EXPECT_TRUE(login.ok());
    if (!login.ok()) return "";
    EXPECT_EQ(login->access_token_expires_in, 300);
    return login->access_token;
  }

  FakeClock clock_;
  metrics::Registry metrics_;
  std::shared_ptr<testing::MemoryStore> store_;
  PasswordHasher hasher_;
  KeyService keys_;
  AccessTokenVerifier verifier_;
  AuthService auth_;
  AdminService admin_;
  std::string alice_id_;
};

TEST_F(AccessTokenTest, LoginIssuesAJwtThatVerifies) {
  std::string jwt = LoginJwt();
  EXPECT_TRUE(LooksLikeJwt(jwt));
  EXPECT_FALSE(LooksLikeJwt("a.b"));
  EXPECT_FALSE(LooksLikeJwt("a..c"));
  EXPECT_FALSE(LooksLikeSessionToken(jwt));
  jwt::ValidationOptions v;
  v.issuer = "https://auth.test";
  v.audience = "https://auth.test";  // the default audience is the issuer
  v.now = clock_.NowUnix();
  auto claims = jwt::Validate(jwt, keys_.Current()->keys, v);
  ASSERT_TRUE(claims.ok()) << claims.error().message();
  EXPECT_EQ(claims->sub, alice_id_);
  EXPECT_EQ(claims->username, "alice");
  EXPECT_EQ(claims->roles, std::vector<std::string>{"admin"});
  EXPECT_EQ(claims->exp, clock_.NowUnix() + 300);
  EXPECT_FALSE(claims->jti.empty());

  auto identity = auth_.Verify(jwt);
  ASSERT_TRUE(identity.ok()) << identity.error().message();
  EXPECT_EQ(identity->user_id, alice_id_);
  EXPECT_EQ(identity->username, "alice");
  EXPECT_EQ(identity->roles, std::vector<std::string>{"admin"});
  EXPECT_EQ(identity->expires_at, clock_.NowUnix() + 300);
  // Cached: verified again the same.
  auto again = auth_.Verify(jwt);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->user_id, alice_id_);
}

TEST_F(AccessTokenTest, TamperedAndExpiredTokensAreUnauthorized) {
  std::string jwt = LoginJwt();
  std::string tampered = jwt;
  tampered[tampered.find('.') + 3] ^= 1;
  auto r = auth_.Verify(tampered);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
  ASSERT_TRUE(auth_.Verify(jwt).ok());  // cached now
  clock_.Advance(300 + 30);
  r = auth_.Verify(jwt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
}

TEST_F(AccessTokenTest, LogoutRevokesTheJtiEverywhere) {
  std::string jwt = LoginJwt();
  ASSERT_TRUE(auth_.Verify(jwt).ok());
  ASSERT_TRUE(auth_.Logout(jwt).ok());
  auto r = auth_.Verify(jwt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
  EXPECT_TRUE(auth_.Logout(jwt).ok());  // idempotent

  // A revocation made by another replica counts for a cached token once the
  // recheck interval (1 s here) has passed; until then the cached answer stands.
  std::string other = LoginJwt();
  ASSERT_TRUE(auth_.Verify(other).ok());
  jwt::ValidationOptions v;
  v.issuer = "https://auth.test";
  v.now = clock_.NowUnix();
  auto claims = jwt::Validate(other, keys_.Current()->keys, v);
  ASSERT_TRUE(claims.ok());
  ASSERT_TRUE(store_->RevokeJti(claims->jti, claims->exp).ok());
  EXPECT_TRUE(auth_.Verify(other).ok());
  clock_.Advance(1);
  r = auth_.Verify(other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
  EXPECT_FALSE(auth_.VerifyWithoutBlocking(other).has_value());  // forgotten: ask the store
}

TEST_F(AccessTokenTest, VerifyWithoutBlockingAnswersOnlyFromAFreshCache) {
  std::string jwt = LoginJwt();
  EXPECT_FALSE(auth_.VerifyWithoutBlocking(jwt).has_value());  // never seen
  auto login = auth_.Login(LoginRequest{"alice", "alice-password", "127.0.0.1", "test", ""});
  ASSERT_TRUE(login.ok());
  EXPECT_FALSE(auth_.VerifyWithoutBlocking(login->session_token).has_value());  // sessions: store
  EXPECT_FALSE(auth_.VerifyWithoutBlocking("garbage").has_value());
  ASSERT_TRUE(auth_.Verify(jwt).ok());
  auto quick = auth_.VerifyWithoutBlocking(jwt);
  ASSERT_TRUE(quick.has_value());
  ASSERT_TRUE(quick->ok());
  EXPECT_EQ((*quick)->user_id, alice_id_);
  clock_.Advance(1);  // the revocation check is due: the store has to be asked
  EXPECT_FALSE(auth_.VerifyWithoutBlocking(jwt).has_value());
  ASSERT_TRUE(auth_.Verify(jwt).ok());
  EXPECT_TRUE(auth_.VerifyWithoutBlocking(jwt).has_value());
  // A logout through this replica is seen at once.
  ASSERT_TRUE(auth_.Logout(jwt).ok());
  EXPECT_FALSE(auth_.VerifyWithoutBlocking(jwt).has_value());
  auto r = auth_.Verify(jwt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
}

TEST_F(AccessTokenTest, LoginWritesARefreshFamilyBoundToItsSession) {
  auto families = std::make_shared<testing::MemoryRefreshTokenStore>();
  SequentialLoginStore logins(store_, families);
  auth_.EnableRefreshTokens(logins, RefreshTokenLifetimes{600, 3600, 10});
  auto login = auth_.Login(LoginRequest{"alice", "alice-password", "127.0.0.1", "test", ""});
  ASSERT_TRUE(login.ok()) << login.error().message();
  const std::string family_id = RefreshFamilyIdOf(login->refresh_token);
  ASSERT_FALSE(family_id.empty()) << login->refresh_token;
  auto family = families->GetFamily(family_id, clock_.NowUnix());
  ASSERT_TRUE(family.ok());
  EXPECT_EQ(family->session_hash, Sha256Hex(login->session_token));
  EXPECT_EQ(family->user_id, alice_id_);
  EXPECT_EQ(family->client_id, "");
  EXPECT_EQ(family->current_hash, Sha256Hex(login->refresh_token));
  EXPECT_EQ(family->idle_expires_at, clock_.NowUnix() + 600);
  EXPECT_EQ(family->absolute_expires_at, clock_.NowUnix() + 3600);

  // No family, no login: the session written first is taken back.
  families->unavailable = true;
  auto failed = auth_.Login(LoginRequest{"alice", "alice-password", "127.0.0.1", "test", ""});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), ErrorCode::kUnavailable);
  auto sessions = store_->ListUserSessions(alice_id_, clock_.NowUnix());
  ASSERT_TRUE(sessions.ok());
  EXPECT_EQ(sessions->size(), 1u);  // only the first login's
}

TEST_F(AccessTokenTest, RevocationStoreOutageIsUnavailableNotUnauthorized) {
  std::string jwt = LoginJwt();
  store_->unavailable = true;  // never verified: the revocation check must reach the store
  auto r = auth_.Verify(jwt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  store_->unavailable = false;
  EXPECT_TRUE(auth_.Verify(jwt).ok());
}

TEST_F(AccessTokenTest, TokensOfARetiredKeyStillVerify) {
  std::string before = LoginJwt();
  ASSERT_TRUE(keys_.Rotate().ok());
  clock_.Advance(keys_.publish_delay());
  ASSERT_TRUE(keys_.Refresh().ok());
  std::string after = LoginJwt();
  EXPECT_NE(jwt::PeekKid(before).value(), jwt::PeekKid(after).value());
  EXPECT_TRUE(auth_.Verify(before).ok());
  EXPECT_TRUE(auth_.Verify(after).ok());
}

}  // namespace
}  // namespace bulwark
