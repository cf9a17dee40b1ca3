// OAuthService over the memory stores and a real KeyService on a FakeClock.
#include "service/oauth_service.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <variant>

#include "crypto/tokens.hpp"
#include "jwt/jwt.hpp"
#include "tests/support/memory_client_store.hpp"
#include "tests/support/memory_refresh_token_store.hpp"
#include "tests/support/memory_store.hpp"

namespace bulwark {
namespace {

using testing::MemoryClientStore;
using testing::MemoryRefreshTokenStore;
using testing::MemoryStore;

constexpr int64_t kStart = 1'700'000'000;
constexpr const char* kIssuer = "https://issuer.test";
constexpr const char* kSecret = "0123456789abcdef0123456789abcdef-secret";

template <typename T>
const T& Ok(const OAuthResult<T>& r) {
  if (const auto* e = std::get_if<OAuthError>(&r)) {
    ADD_FAILURE() << e->code << ": " << e->description;
    static T empty{};
    return empty;
  }
  return std::get<T>(r);
}

template <typename T>
std::string ErrorCode(const OAuthResult<T>& r) {
  const auto* e = std::get_if<OAuthError>(&r);
  return e ? e->code : "ok";
}

class OAuthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitCrypto();
    ASSERT_TRUE(keys_.Refresh().ok());  // bootstraps an active key
    OAuthClient client;
    client.id = "reports";
    client.secret_hash = OAuthService::HashClientSecret(kSecret);
    client.grants = {"client_credentials", "refresh_token"};
    client.scopes = {"reports:read", "reports:write"};
    ASSERT_TRUE(clients_.CreateClient(client).ok());
    session_.token_hash = Sha256Hex(NewSessionToken());
    session_.user_id = "user-1";
    session_.username = "alice";
    session_.roles = {"admin"};
    session_.created_at = kStart;
    session_.expires_at = kStart + 3600;
    ASSERT_TRUE(store_->CreateSession(session_).ok());
  }

  // A family bound to session_, as a login writes it (AuthService::CompleteLogin).
  Result<std::string> IssueRefreshToken(const std::string& client_id) {
    NewRefreshToken issued =
        MakeRefreshFamily(session_, client_id, clock_.NowUnix(), options_.refresh);
    if (Status st = refresh_.CreateFamily(issued.family); !st.ok()) return st.error();
    return std::move(issued.token);
  }

  jwt::Claims Validate(const std::string& token) {
    jwt::ValidationOptions v;
    v.issuer = kIssuer;
    v.audience = kIssuer;
    v.now = clock_.NowUnix();
    auto claims = jwt::Validate(token, keys_.Current()->keys, v);
    EXPECT_TRUE(claims.ok()) << (claims.ok() ? "" : claims.error().message());
    return claims.ok() ? *claims : jwt::Claims{};
  }

  FakeClock clock_{kStart};
  std::shared_ptr<MemoryStore> store_ = std::make_shared<MemoryStore>();
  MemoryClientStore clients_;
  MemoryRefreshTokenStore refresh_;
  KeyService keys_{*store_, clock_, KeyServiceOptions{}};
  metrics::Registry metrics_;
  OAuthOptions options_{kIssuer, "", 300, RefreshTokenLifetimes{3600, 86400, 10}};
  // Revocations are rechecked on every verification here (0 ms), as the
  // tests revoke and look again without moving a steady clock.
  AccessTokenVerifier verifier_{
      keys_, *store_, clock_, metrics_,
      AccessTokenVerifierOptions{kIssuer, 30, 100, std::chrono::milliseconds(0)}};
  OAuthService oauth_{clients_, refresh_, *store_, keys_, verifier_, clock_, metrics_, options_};
  Session session_;
};

TEST_F(OAuthServiceTest, ClientAuthenticationChecksTheSecret) {
  EXPECT_EQ(Ok(oauth_.AuthenticateClient("reports", kSecret)).id, "reports");
  EXPECT_EQ(ErrorCode(oauth_.AuthenticateClient("reports", "wrong")), "invalid_client");
  EXPECT_EQ(ErrorCode(oauth_.AuthenticateClient("nobody", kSecret)), "invalid_client");
  EXPECT_EQ(ErrorCode(oauth_.AuthenticateClient("", "")), "invalid_client");
  clients_.unavailable = true;
  EXPECT_EQ(ErrorCode(oauth_.AuthenticateClient("reports", kSecret)), "temporarily_unavailable");
}

TEST_F(OAuthServiceTest, ClientCredentialsIssuesAJwtForTheClient) {
  const OAuthClient client = Ok(oauth_.AuthenticateClient("reports", kSecret));
  TokenResponse r = Ok(oauth_.ClientCredentials(client, "reports:read"));
  EXPECT_EQ(r.expires_in, 300);
  EXPECT_TRUE(r.refresh_token.empty());
  EXPECT_EQ(r.scope, "reports:read");
  jwt::Claims c = Validate(r.access_token);
  EXPECT_EQ(c.sub, "reports");
  EXPECT_EQ(c.client_id, "reports");
  EXPECT_EQ(c.scope, "reports:read");
  // No scope asks for all of them; a foreign scope is refused.
  EXPECT_EQ(Ok(oauth_.ClientCredentials(client, "")).scope, "reports:read reports:write");
  EXPECT_EQ(ErrorCode(oauth_.ClientCredentials(client, "admin")), "invalid_scope");
  OAuthClient limited = client;
  limited.grants = {"refresh_token"};
  EXPECT_EQ(ErrorCode(oauth_.ClientCredentials(limited, "")), "unauthorized_client");
}

TEST_F(OAuthServiceTest, RefreshRotatesAndReturnsANewAccessToken) {
  auto token = IssueRefreshToken("");
  ASSERT_TRUE(token.ok());
  clock_.Advance(60);
  TokenResponse first = Ok(oauth_.Refresh(*token, ""));
  EXPECT_NE(first.refresh_token, *token);
  EXPECT_EQ(RefreshFamilyIdOf(first.refresh_token), RefreshFamilyIdOf(*token));
  jwt::Claims c = Validate(first.access_token);
  EXPECT_EQ(c.sub, "user-1");
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.roles, std::vector<std::string>{"admin"});
  clock_.Advance(60);
  TokenResponse second = Ok(oauth_.Refresh(first.refresh_token, ""));
  EXPECT_NE(second.refresh_token, first.refresh_token);
}

TEST_F(OAuthServiceTest, ALostResponseIsReissuedWithinTheGraceWindow) {
  auto token = IssueRefreshToken("");
  ASSERT_TRUE(token.ok());
  Ok(oauth_.Refresh(*token, ""));  // response lost
  clock_.Advance(5);
  TokenResponse retry = Ok(oauth_.Refresh(*token, ""));
  EXPECT_FALSE(retry.refresh_token.empty());
  Ok(oauth_.Refresh(retry.refresh_token, ""));
}

TEST_F(OAuthServiceTest, ReuseAfterTheGraceWindowRevokesTheFamily) {
  auto token = IssueRefreshToken("");
  ASSERT_TRUE(token.ok());
  TokenResponse legit = Ok(oauth_.Refresh(*token, ""));
  clock_.Advance(30);
  EXPECT_EQ(ErrorCode(oauth_.Refresh(*token, "")), "invalid_grant");  // the replay
  // The legitimate holder is cut off too: the family is gone.
  EXPECT_EQ(ErrorCode(oauth_.Refresh(legit.refresh_token, "")), "invalid_grant");
  EXPECT_NE(metrics_.RenderPrometheus().find("bulwark_refresh_reuse_total 1"), std::string::npos);
}

TEST_F(OAuthServiceTest, RefreshIsBoundToItsClientAndSession) {
  auto token = IssueRefreshToken("reports");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(ErrorCode(oauth_.Refresh(*token, "other")), "invalid_grant");
  ASSERT_TRUE(store_->DeleteSession(session_.token_hash).ok());  // logout
  EXPECT_EQ(ErrorCode(oauth_.Refresh(*token, "reports")), "invalid_grant");
}

TEST_F(OAuthServiceTest, MalformedRefreshTokensAreInvalidGrant) {
  for (const char* bad : {"", "nodot", ".x", "x.", "a.b.c", "fam.sec ret", "fam.s\xff"}) {
    EXPECT_EQ(ErrorCode(oauth_.Refresh(bad, "")), "invalid_grant") << bad;
  }
}

TEST_F(OAuthServiceTest, AStoreOutageIsTemporarilyUnavailableNotInvalid) {
  auto token = IssueRefreshToken("");
  ASSERT_TRUE(token.ok());
  refresh_.unavailable = true;
  EXPECT_EQ(ErrorCode(oauth_.Refresh(*token, "")), "temporarily_unavailable");
  refresh_.unavailable = false;
  Ok(oauth_.Refresh(*token, ""));
}

TEST_F(OAuthServiceTest, IntrospectionAndRevocation) {
  const OAuthClient client = Ok(oauth_.AuthenticateClient("reports", kSecret));
  TokenResponse access = Ok(oauth_.ClientCredentials(client, ""));
  Introspection i = Ok(oauth_.Introspect(access.access_token));
  EXPECT_TRUE(i.active);
  EXPECT_EQ(i.token_type, "access_token");
  EXPECT_EQ(i.client_id, "reports");
  EXPECT_EQ(i.exp, kStart + 300);

  auto refresh = IssueRefreshToken("");
  ASSERT_TRUE(refresh.ok());
  EXPECT_TRUE(Ok(oauth_.Introspect(*refresh)).active);
  EXPECT_FALSE(Ok(oauth_.Introspect("garbage")).active);
  EXPECT_FALSE(Ok(oauth_.Introspect(access.access_token + "x")).active);

  EXPECT_TRUE(Ok(oauth_.Revoke(access.access_token)));
  EXPECT_FALSE(Ok(oauth_.Introspect(access.access_token)).active);
  EXPECT_TRUE(Ok(oauth_.Revoke(*refresh)));
  EXPECT_FALSE(Ok(oauth_.Introspect(*refresh)).active);
  EXPECT_EQ(ErrorCode(oauth_.Refresh(*refresh, "")), "invalid_grant");
  EXPECT_TRUE(Ok(oauth_.Revoke("unknown-token")));  // RFC 7009: fine
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

TEST_F(OAuthServiceTest, AnAuthenticatedClientIsRememberedForTheCacheTtl) {
  // Never authenticated here: the store must be asked.
  EXPECT_FALSE(oauth_.AuthenticateCachedClient("reports", kSecret).has_value());
  EXPECT_EQ(Ok(oauth_.AuthenticateClient("reports", kSecret)).id, "reports");
  auto cached = oauth_.AuthenticateCachedClient("reports", kSecret);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->scopes, (std::vector<std::string>{"reports:read", "reports:write"}));
  // The secret is compared every time; a wrong one takes the full path.
  EXPECT_FALSE(oauth_.AuthenticateCachedClient("reports", "wrong").has_value());
  EXPECT_FALSE(oauth_.AuthenticateCachedClient("nobody", kSecret).has_value());
  clients_.unavailable = true;  // served from memory while the store is down
  EXPECT_TRUE(oauth_.AuthenticateCachedClient("reports", kSecret).has_value());
  clients_.unavailable = false;
  clock_.Advance(1);  // the TTL (1 s) is over
  EXPECT_FALSE(oauth_.AuthenticateCachedClient("reports", kSecret).has_value());
  // Deleting through this service forgets it at once.
  EXPECT_EQ(Ok(oauth_.AuthenticateClient("reports", kSecret)).id, "reports");
  ASSERT_TRUE(oauth_.DeleteClient("reports").ok());
  EXPECT_FALSE(oauth_.AuthenticateCachedClient("reports", kSecret).has_value());
  EXPECT_EQ(ErrorCode(oauth_.AuthenticateClient("reports", kSecret)), "invalid_client");
}

TEST_F(OAuthServiceTest, IntrospectionWithoutBlockingAnswersOnlyCachedAccessTokens) {
  // A verifier that trusts its revocation checks for 1 s.
  AccessTokenVerifier verifier(
      keys_, *store_, clock_, metrics_,
      AccessTokenVerifierOptions{kIssuer, 30, 100, std::chrono::seconds(1)});
  OAuthService oauth(clients_, refresh_, *store_, keys_, verifier, clock_, metrics_, options_);
  const OAuthClient client = Ok(oauth.AuthenticateClient("reports", kSecret));
  const std::string access = Ok(oauth.ClientCredentials(client, "")).access_token;
  EXPECT_FALSE(oauth.IntrospectWithoutBlocking(access).has_value());  // not verified yet
  EXPECT_FALSE(oauth.IntrospectWithoutBlocking("not-a-jwt").has_value());
  EXPECT_TRUE(Ok(oauth.Introspect(access)).active);
  auto quick = oauth.IntrospectWithoutBlocking(access);
  ASSERT_TRUE(quick.has_value());
  const Introspection& i = Ok(*quick);
  EXPECT_TRUE(i.active);
  EXPECT_EQ(i.client_id, "reports");
  EXPECT_EQ(i.scope, "reports:read reports:write");
  // Revoked through this service: forgotten at once, inactive from then on.
  EXPECT_TRUE(Ok(oauth.Revoke(access)));
  EXPECT_FALSE(oauth.IntrospectWithoutBlocking(access).has_value());
  EXPECT_FALSE(Ok(oauth.Introspect(access)).active);
}

}  // namespace
}  // namespace bulwark
