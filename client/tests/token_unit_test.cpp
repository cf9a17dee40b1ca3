// The JWKS cache behind local validation, and client_credentials refresh
// timing, against fake HTTP servers on 127.0.0.1 and fake clocks.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "bulwark/client/token_source.hpp"
#include "bulwark/client/token_validator.hpp"
#include "fake_server.hpp"
#include "jwt/jwt.hpp"

namespace bulwark::client {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeServer;
using SysClock = std::chrono::system_clock;
using Clock = std::chrono::steady_clock;

constexpr const char* kIssuer = "https://auth.test";

ClientOptions Options(const std::string& url) {
  ClientOptions o;
  o.base_urls = {url};
  o.connect_timeout = milliseconds(200);
  o.read_timeout = milliseconds(500);
  o.retry.max_attempts = 2;
  o.retry.base_delay = milliseconds(1);
  o.seed = 1;
  return o;
}

// A JWKS endpoint whose key set and max-age the test controls.
struct JwksServer {
  std::mutex mutex;
  jwt::KeySet keys;
  std::string cache_control = "public, max-age=60";
  std::atomic<int> fetches{0};
  std::atomic<bool> failing{false};
  FakeServer server{[this](const FakeRequest& r) {
    EXPECT_EQ(r.target, "/.well-known/jwks.json");
    ++fetches;
    if (failing) return FakeResponse{503, {}, "{}"};
    std::lock_guard lock(mutex);
    return FakeResponse{200, {{"Cache-Control", cache_control}}, keys.ToJwks()};
  }};
  void Add(const jwt::SigningKey& k) {
    std::lock_guard lock(mutex);
    keys.Add(k);
  }
};

struct FakeSysClock {
  std::mutex mutex;
  SysClock::time_point t = SysClock::now();
  SysClock::time_point Now() {
    std::lock_guard lock(mutex);
    return t;
  }
  void Advance(milliseconds d) {
    std::lock_guard lock(mutex);
    t += d;
  }
};

std::string Sign(const jwt::SigningKey& key, SysClock::time_point now, int64_t lifetime = 300,
                 const std::string& iss = kIssuer) {
  jwt::Claims c;
  c.iss = iss;
  c.sub = "user-1";
  c.aud = {"app"};
  c.iat = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
  c.exp = c.iat + lifetime;
  c.jti = "j1";
  c.roles = {"admin"};
  c.username = "alice";
  auto t = key.Sign(c);
  EXPECT_TRUE(t.ok());
  return t.ok() ? t.value() : "";
}

jwt::SigningKey NewKey(const std::string& kid) {
  auto k = jwt::SigningKey::Generate(jwt::Algorithm::kES256, kid);
  EXPECT_TRUE(k.ok());
  return std::move(k).value();
}

TokenValidatorOptions ValidatorOptions(FakeSysClock& clock) {
  TokenValidatorOptions o;
  o.issuer = kIssuer;
  o.audience = "app";
  o.min_refetch_interval = milliseconds(5000);
  o.now = [&clock] { return clock.Now(); };
  return o;
}

TEST(Jwks, CacheControlMaxAge) {
  EXPECT_EQ(CacheControlMaxAge("public, max-age=300"), 300);
  EXPECT_EQ(CacheControlMaxAge("max-age=5"), 5);
  EXPECT_EQ(CacheControlMaxAge("s-maxage=10"), -1);
  EXPECT_EQ(CacheControlMaxAge("no-store"), -1);
  EXPECT_EQ(CacheControlMaxAge("max-age="), -1);
  EXPECT_TRUE(LooksLikeJwt("aGk.eyJ9.c2ln"));
  EXPECT_FALSE(LooksLikeJwt("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"));
  EXPECT_FALSE(LooksLikeJwt("a.b.c.d"));
}

TEST(Jwks, ValidatesLocallyFromOneFetch) {
  JwksServer jwks;
  auto key = NewKey("k1");
  jwks.Add(key);
  FakeSysClock clock;
  Client client(Options(jwks.server.url()));
  TokenValidator v(client, ValidatorOptions(clock));
  for (int i = 0; i < 20; ++i) {
    auto r = v.Validate(Sign(key, clock.Now()));
    ASSERT_EQ(r.outcome, Outcome::kValid) << r.error;
    EXPECT_EQ(r.claims.sub, "user-1");
    EXPECT_EQ(r.claims.username, "alice");
    EXPECT_EQ(r.claims.roles, (std::vector<std::string>{"admin"}));
  }
  EXPECT_EQ(jwks.fetches.load(), 1);
  EXPECT_EQ(v.Stats().keys, 1u);
}

TEST(Jwks, RejectsBadTokensWithoutRefetching) {
  JwksServer jwks;
  auto key = NewKey("k1");
  jwks.Add(key);
  FakeSysClock clock;
  Client client(Options(jwks.server.url()));
  TokenValidator v(client, ValidatorOptions(clock));
  ASSERT_TRUE(v.Prefetch());
  EXPECT_EQ(v.Validate("not a token").outcome, Outcome::kInvalid);
  EXPECT_EQ(v.Validate(Sign(key, clock.Now(), 300, "https://evil")).outcome, Outcome::kInvalid);
  auto expired = Sign(key, clock.Now() - seconds(1000), 300);
  EXPECT_EQ(v.Validate(expired).outcome, Outcome::kInvalid);
  auto good = Sign(key, clock.Now());
  std::string tampered = good;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(v.Validate(tampered).outcome, Outcome::kInvalid);
  EXPECT_EQ(jwks.fetches.load(), 1);
}

TEST(Jwks, UnknownKidRefetchesOnceThenIsRateLimited) {
  JwksServer jwks;
  auto k1 = NewKey("k1");
  jwks.Add(k1);
  FakeSysClock clock;
  Client client(Options(jwks.server.url()));
  TokenValidator v(client, ValidatorOptions(clock));
  ASSERT_TRUE(v.Prefetch());
  clock.Advance(milliseconds(6000));
  // Rotation: the server publishes k2; a token signed with it triggers one refetch.
  auto k2 = NewKey("k2");
  jwks.Add(k2);
  auto r = v.Validate(Sign(k2, clock.Now()));
  ASSERT_EQ(r.outcome, Outcome::kValid) << r.error;
  EXPECT_EQ(jwks.fetches.load(), 2);
  // A flood of tokens with kids nobody knows: no more fetches within the interval.
  auto rogue = NewKey("rogue");
  for (int i = 0; i < 100; ++i) {
    auto bad = v.Validate(Sign(rogue, clock.Now()));
    EXPECT_EQ(bad.outcome, Outcome::kInvalid);
    EXPECT_EQ(bad.error, "unknown kid");
  }
  EXPECT_EQ(jwks.fetches.load(), 2);
  EXPECT_EQ(v.Stats().refetches_suppressed, 100u);
  // After the interval: exactly one more.
  clock.Advance(milliseconds(5001));
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(v.Validate(Sign(rogue, clock.Now())).outcome, Outcome::kInvalid);
  EXPECT_EQ(jwks.fetches.load(), 3);
  EXPECT_EQ(v.Stats().unknown_kid_refetches, 2u);
}

TEST(Jwks, HonoursMaxAgeAndServesStaleKeysWhileBulwarkIsDown) {
  JwksServer jwks;
  auto key = NewKey("k1");
  jwks.Add(key);
  FakeSysClock clock;
  auto o = Options(jwks.server.url());
  Client client(o);
  TokenValidator v(client, ValidatorOptions(clock));
  ASSERT_EQ(v.Validate(Sign(key, clock.Now())).outcome, Outcome::kValid);
  clock.Advance(seconds(30));  // within max-age=60
  ASSERT_EQ(v.Validate(Sign(key, clock.Now())).outcome, Outcome::kValid);
  EXPECT_EQ(jwks.fetches.load(), 1);
  clock.Advance(seconds(31));  // stale: refetched
  ASSERT_EQ(v.Validate(Sign(key, clock.Now())).outcome, Outcome::kValid);
  EXPECT_EQ(jwks.fetches.load(), 2);

  // Bulwark goes away completely; the cached key keeps validating.
  jwks.server.Stop();
  clock.Advance(seconds(120));
  for (int i = 0; i < 50; ++i) {
    auto r = v.Validate(Sign(key, clock.Now()));
    ASSERT_EQ(r.outcome, Outcome::kValid) << r.error;
  }
  auto s = v.Stats();
  EXPECT_EQ(s.fetch_failures, 1u);  // one attempt per min_refetch_interval, not one per call
  // A token with an unknown kid cannot be judged while Bulwark is away: unavailable, not invalid.
  clock.Advance(seconds(10));
  auto r = v.Validate(Sign(NewKey("k9"), clock.Now()));
  EXPECT_EQ(r.outcome, Outcome::kUnavailable) << r.error;
}

TEST(Jwks, NoKeysAndBulwarkDownIsUnavailable) {
  JwksServer jwks;
  auto key = NewKey("k1");
  jwks.Add(key);
  jwks.failing = true;
  FakeSysClock clock;
  Client client(Options(jwks.server.url()));
  TokenValidator v(client, ValidatorOptions(clock));
  EXPECT_EQ(v.Validate(Sign(key, clock.Now())).outcome, Outcome::kUnavailable);
  jwks.failing = false;
  clock.Advance(seconds(6));
  EXPECT_EQ(v.Validate(Sign(key, clock.Now())).outcome, Outcome::kValid);
}

// --- client_credentials ----------------------------------------------------

struct FakeSteadyClock {
  std::mutex mutex;
  Clock::time_point t = Clock::now();
  Clock::time_point Now() {
    std::lock_guard lock(mutex);
    return t;
  }
  void Advance(milliseconds d) {
    std::lock_guard lock(mutex);
    t += d;
  }
};

struct TokenEndpoint {
  std::atomic<int> grants{0};
  std::atomic<int> status{200};
  std::atomic<int> expires_in{300};
  std::mutex mutex;
  FakeRequest last;
  FakeServer server{[this](const FakeRequest& r) {
    {
      std::lock_guard lock(mutex);
      last = r;
    }
    int n = ++grants;
    if (status == 401) return FakeResponse{401, {}, R"({"error":"invalid_client"})"};
    if (status != 200) return FakeResponse{status.load(), {}, "{}"};
    return FakeResponse{200,
                        {{"Cache-Control", "no-store"}},
                        R"({"access_token":"tok-)" + std::to_string(n) +
                            R"(","token_type":"Bearer","expires_in":)" +
                            std::to_string(expires_in.load()) + "}"};
  }};
};

TEST(ClientCredentials, SendsAnRfc6749Request) {
  TokenEndpoint ep;
  Client client(Options(ep.server.url()));
  ClientCredentialsOptions o{"my app", "s3cr:t", "read write"};
  ClientCredentialsTokenSource source(client, o);
  auto t = source.Get();
  ASSERT_EQ(t.outcome, Outcome::kValid) << t.error;
  EXPECT_EQ(t.token, "tok-1");
  EXPECT_EQ(t.token_type, "Bearer");
  EXPECT_EQ(t.expires_in, seconds(300));
  std::lock_guard lock(ep.mutex);
  EXPECT_EQ(ep.last.method, "POST");
  EXPECT_EQ(ep.last.target, "/oauth2/token");
  EXPECT_EQ(ep.last.Header("Content-Type").value_or(""), "application/x-www-form-urlencoded");
  EXPECT_EQ(ep.last.body, "grant_type=client_credentials&scope=read+write");
  EXPECT_EQ(ep.last.Header("Authorization").value_or(""),
            "Basic " + Base64Encode("my+app:s3cr%3At"));
}

TEST(ClientCredentials, ClientSecretPost) {
  TokenEndpoint ep;
  Client client(Options(ep.server.url()));
  ClientCredentialsOptions o{"app", "pw"};
  o.basic_auth = false;
  ClientCredentialsTokenSource source(client, o);
  ASSERT_EQ(source.Get().outcome, Outcome::kValid);
  std::lock_guard lock(ep.mutex);
  EXPECT_EQ(ep.last.body, "grant_type=client_credentials&client_id=app&client_secret=pw");
  EXPECT_FALSE(ep.last.Header("Authorization").has_value());
}

TEST(ClientCredentials, RefreshesAtEightyPercentOrSkewBeforeExpiry) {
  TokenEndpoint ep;
  FakeSteadyClock clock;
  Client client(Options(ep.server.url()));
  ClientCredentialsOptions o{"app", "pw"};
  o.now = [&clock] { return clock.Now(); };
  ClientCredentialsTokenSource source(client, o);
  auto start = clock.Now();
  EXPECT_EQ(source.Get().token, "tok-1");
  // 300 s lifetime: min(240 s, 270 s) = 240 s.
  EXPECT_EQ(source.refresh_at() - start, seconds(240));
  clock.Advance(seconds(239));
  EXPECT_EQ(source.Get().token, "tok-1");
  EXPECT_EQ(ep.grants.load(), 1);
  clock.Advance(seconds(1));
  EXPECT_EQ(source.Get().token, "tok-2");
  EXPECT_EQ(ep.grants.load(), 2);
  // 100 s lifetime: min(80 s, 70 s) = 70 s (the skew wins).
  ep.expires_in = 100;
  source.Invalidate();
  auto t = source.Get();
  EXPECT_EQ(t.token, "tok-3");
  EXPECT_EQ(source.refresh_at() - clock.Now(), seconds(70));
  // 20 s lifetime, shorter than the skew: 80 % = 16 s.
  ep.expires_in = 20;
  source.Invalidate();
  EXPECT_EQ(source.Get().token, "tok-4");
  EXPECT_EQ(source.refresh_at() - clock.Now(), seconds(16));
}

TEST(ClientCredentials, KeepsTheCurrentTokenThroughAnOutageUntilItExpires) {
  TokenEndpoint ep;
  FakeSteadyClock clock;
  Client client(Options(ep.server.url()));
  ClientCredentialsOptions o{"app", "pw"};
  o.now = [&clock] { return clock.Now(); };
  o.retry_interval = milliseconds(1000);
  ClientCredentialsTokenSource source(client, o);
  ASSERT_EQ(source.Get().token, "tok-1");
  ep.status = 503;
  clock.Advance(seconds(250));  // past the refresh point, before expiry
  auto t = source.Get();
  EXPECT_EQ(t.outcome, Outcome::kValid);
  EXPECT_EQ(t.token, "tok-1");
  int grants = ep.grants.load();
  EXPECT_EQ(grants, 2);  // one POST: grants are not retried once sent
  for (int i = 0; i < 20; ++i) EXPECT_EQ(source.Get().token, "tok-1");
  EXPECT_EQ(ep.grants.load(), grants);  // no retry before retry_interval
  clock.Advance(seconds(60));           // expired now
  EXPECT_EQ(source.Get().outcome, Outcome::kUnavailable);
  ep.status = 200;
  EXPECT_EQ(source.Get().outcome, Outcome::kValid);
}

TEST(ClientCredentials, ARefusedClientIsInvalidAndNotRetried) {
  TokenEndpoint ep;
  ep.status = 401;
  Client client(Options(ep.server.url()));
  ClientCredentialsTokenSource source(client, ClientCredentialsOptions{"app", "wrong"});
  auto t = source.Get();
  EXPECT_EQ(t.outcome, Outcome::kInvalid);
  EXPECT_EQ(t.error, "invalid_client");
  EXPECT_EQ(ep.grants.load(), 1);
}

}  // namespace
}  // namespace bulwark::client
