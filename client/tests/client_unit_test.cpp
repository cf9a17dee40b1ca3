// Retries, backoff, breakers and failover of bulwark::client::Client against
// fake HTTP servers on 127.0.0.1.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include "bulwark/client/client.hpp"
#include "fake_server.hpp"

namespace bulwark::client {
namespace {

using std::chrono::milliseconds;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeServer;
using testing::RefusedPort;
using Clock = std::chrono::steady_clock;

std::string RefusedUrl() { return "http://127.0.0.1:" + std::to_string(RefusedPort()); }

FakeResponse Ok() {
  return FakeResponse{
      200,
      {{"X-Auth-User", "alice"}, {"X-Auth-User-Id", "u1"}, {"X-Auth-Roles", "admin,dev"}},
      "{}"};
}

// Options for fast tests: no real sleeping unless asked, short timeouts.
ClientOptions FastOptions(std::vector<std::string> urls) {
  ClientOptions o;
  o.base_urls = std::move(urls);
  o.connect_timeout = milliseconds(300);
  o.read_timeout = milliseconds(500);
  o.failover = FailoverOrder::kOrdered;
  o.seed = 42;
  return o;
}

struct RecordedSleeps {
  std::vector<milliseconds> delays;
  std::mutex mutex;
  void Install(Client& c) {
    c.SetSleepForTesting([this](milliseconds d) {
      std::lock_guard lock(mutex);
      delays.push_back(d);
    });
  }
};

TEST(Backoff, CeilingDoublesUpToTheCap) {
  RetryPolicy p;
  p.base_delay = milliseconds(25);
  p.max_delay = milliseconds(1000);
  EXPECT_EQ(BackoffCeiling(p, 1), milliseconds(25));
  EXPECT_EQ(BackoffCeiling(p, 2), milliseconds(50));
  EXPECT_EQ(BackoffCeiling(p, 3), milliseconds(100));
  EXPECT_EQ(BackoffCeiling(p, 6), milliseconds(800));
  EXPECT_EQ(BackoffCeiling(p, 7), milliseconds(1000));
  EXPECT_EQ(BackoffCeiling(p, 1000), milliseconds(1000));  // no overflow
}

TEST(Backoff, FullJitterIsUniformOverTheWindow) {
  RetryPolicy p;
  p.base_delay = milliseconds(25);
  p.max_delay = milliseconds(1000);
  std::mt19937_64 rng(7);
  constexpr int kSamples = 20000;
  std::array<int, 10> buckets{};
  double sum = 0;
  int64_t lo = 1 << 30, hi = -1;
  for (int i = 0; i < kSamples; ++i) {
    auto d = BackoffDelay(p, 4, rng).count();  // window [0, 200]
    ASSERT_GE(d, 0);
    ASSERT_LE(d, 200);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    sum += static_cast<double>(d);
    buckets[static_cast<std::size_t>(std::min<int64_t>(d / 20, 9))]++;
  }
  EXPECT_NEAR(sum / kSamples, 100.0, 4.0);
  EXPECT_LE(lo, 2);  // reaches both ends of the window
  EXPECT_GE(hi, 198);
  for (int b : buckets) {
    EXPECT_GT(b, kSamples / 10 * 0.85);
    EXPECT_LT(b, kSamples / 10 * 1.15);
  }
}

TEST(Client, RejectsBadBaseUrls) {
  EXPECT_THROW(Client(ClientOptions{}), std::invalid_argument);
  EXPECT_THROW(Client(FastOptions({"ftp://x"})), std::invalid_argument);
  EXPECT_THROW(Client(FastOptions({"http://host:port"})), std::invalid_argument);
}

TEST(Client, VerifySessionReadsTheIdentityAndKeepsTheConnectionAlive) {
  std::string seen_auth;
  FakeServer server([&](const FakeRequest& r) {
    seen_auth = r.Header("Authorization").value_or("");
    EXPECT_EQ(r.target, "/prefix/v1/auth/verify");
    return Ok();
  });
  Client c(FastOptions({server.url() + "/prefix/"}));
  for (int i = 0; i < 5; ++i) {
    auto v = c.VerifySession("tok");
    ASSERT_EQ(v.outcome, Outcome::kValid) << v.error;
    EXPECT_EQ(v.identity.user, "alice");
    EXPECT_EQ(v.identity.user_id, "u1");
    EXPECT_EQ(v.identity.roles, (std::vector<std::string>{"admin", "dev"}));
  }
  EXPECT_EQ(seen_auth, "Bearer tok");
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(server.connections(), 1);
}

TEST(Client, InvalidCredentialIsNeverRetried) {
  FakeServer server([](const FakeRequest&) { return FakeResponse{401, {}, "{}"}; });
  Client c(FastOptions({server.url()}));
  auto v = c.VerifySession("bad");
  EXPECT_EQ(v.outcome, Outcome::kInvalid);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(c.Stats().retries, 0u);
  EXPECT_EQ(c.Stats().endpoints[0].state, BreakerState::kClosed);
}

TEST(Client, IdempotentCallsAreRetriedWithBackoffThenReportedUnavailable) {
  FakeServer server([](const FakeRequest&) { return FakeResponse{503, {}, "{}"}; });
  auto o = FastOptions({server.url()});
  o.breaker.failure_threshold = 100;  // keep the breaker out of this test
  o.retry.max_attempts = 5;
  Client c(o);
  RecordedSleeps sleeps;
  sleeps.Install(c);
  auto v = c.VerifySession("tok");
  EXPECT_EQ(v.outcome, Outcome::kUnavailable);  // never kInvalid
  EXPECT_EQ(server.requests(), 5);
  ASSERT_EQ(sleeps.delays.size(), 4u);
  for (std::size_t i = 0; i < sleeps.delays.size(); ++i) {
    EXPECT_LE(sleeps.delays[i], BackoffCeiling(o.retry, static_cast<int>(i) + 1));
  }
  auto s = c.Stats();
  EXPECT_EQ(s.retries, 4u);
  EXPECT_EQ(s.unavailable, 1u);
}

TEST(Client, NonIdempotentCallsAreNotRetriedOnceTheyMayHaveReachedTheServer) {
  std::atomic<int> logins{0};
  FakeServer answers503([&](const FakeRequest&) {
    ++logins;
    return FakeResponse{503, {}, "{}"};
  });
  FakeServer drops([&](const FakeRequest&) {
    ++logins;
    FakeResponse r;
    r.drop = true;
    return r;
  });
  FakeServer times_out([&](const FakeRequest&) {
    ++logins;
    FakeResponse r;
    r.delay = milliseconds(1500);
    return r;
  });
  for (FakeServer* s : {&answers503, &drops, &times_out}) {
    logins = 0;
    FakeServer backup([](const FakeRequest&) {
      return FakeResponse{200, {}, R"({"session_token":"s"})"};
    });
    Client c(FastOptions({s->url(), backup.url()}));
    RecordedSleeps sleeps;
    sleeps.Install(c);
    auto r = c.Login("alice", "pw");
    EXPECT_EQ(r.outcome, Outcome::kUnavailable);
    EXPECT_EQ(logins.load(), 1);
    EXPECT_EQ(backup.requests(), 0);  // not sent twice
  }
}

TEST(Client, NonIdempotentCallsFailOverWhenTheConnectionWasRefused) {
  FakeServer server([](const FakeRequest& r) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_NE(r.body.find(R"("username":"alice")"), std::string::npos);
    return FakeResponse{200, {}, R"({"session_token":"s1","expires_in":60})"};
  });
  Client c(FastOptions({RefusedUrl(), server.url()}));
  RecordedSleeps sleeps;
  sleeps.Install(c);
  auto r = c.Login("alice", "pw");
  ASSERT_EQ(r.outcome, Outcome::kValid) << r.error;
  EXPECT_EQ(r.session_token, "s1");
  EXPECT_EQ(r.expires_in, 60);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(c.Stats().failovers, 1u);
}

TEST(Client, BreakerOpensRejectsThenHalfOpensAndCloses) {
  std::atomic<bool> healthy{false};
  FakeServer server([&](const FakeRequest&) {
    return healthy ? Ok() : FakeResponse{503, {}, "{}"};
  });
  auto o = FastOptions({server.url()});
  o.breaker.failure_threshold = 3;
  o.breaker.open_duration = milliseconds(200);
  o.retry.max_attempts = 1;
  Client c(o);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.VerifySession("t").outcome, Outcome::kUnavailable);
  auto s = c.Stats().endpoints[0];
  EXPECT_EQ(s.state, BreakerState::kOpen);
  EXPECT_EQ(s.times_opened, 1u);
  // Open: fails fast without a request.
  int before = server.requests();
  auto begin = Clock::now();
  EXPECT_EQ(c.VerifySession("t").outcome, Outcome::kUnavailable);
  EXPECT_EQ(server.requests(), before);
  EXPECT_LT(Clock::now() - begin, milliseconds(100));
  EXPECT_GE(c.Stats().endpoints[0].rejected, 1u);
  // After the cool-down one probe goes through; it fails: open again.
  std::this_thread::sleep_for(milliseconds(250));
  EXPECT_EQ(c.VerifySession("t").outcome, Outcome::kUnavailable);
  EXPECT_EQ(server.requests(), before + 1);
  s = c.Stats().endpoints[0];
  EXPECT_EQ(s.state, BreakerState::kOpen);
  EXPECT_EQ(s.times_half_opened, 1u);
  EXPECT_EQ(s.times_opened, 2u);
  // Healthy again: the next probe closes it.
  healthy = true;
  std::this_thread::sleep_for(milliseconds(250));
  EXPECT_EQ(c.VerifySession("t").outcome, Outcome::kValid);
  s = c.Stats().endpoints[0];
  EXPECT_EQ(s.state, BreakerState::kClosed);
  EXPECT_EQ(s.times_half_opened, 2u);
  EXPECT_EQ(s.times_closed, 1u);
}

TEST(Client, OrderedFailoverSkipsOpenBreakers) {
  std::atomic<int> b_calls{0}, c_calls{0};
  FakeServer b([&](const FakeRequest&) {
    ++b_calls;
    return FakeResponse{503, {}, "{}"};
  });
  FakeServer good([&](const FakeRequest&) {
    ++c_calls;
    return Ok();
  });
  auto o = FastOptions({RefusedUrl(), b.url(), good.url()});
  o.breaker.failure_threshold = 2;
  o.breaker.open_duration = milliseconds(60000);
  Client c(o);
  RecordedSleeps sleeps;
  sleeps.Install(c);
  // Call 1: refused -> 503 -> ok, with no sleep in between (failover is immediate).
  auto v = c.VerifySession("t");
  ASSERT_EQ(v.outcome, Outcome::kValid);
  EXPECT_TRUE(sleeps.delays.empty());
  auto s = c.Stats();
  EXPECT_EQ(s.attempts, 3u);
  EXPECT_EQ(s.failovers, 2u);
  EXPECT_EQ(s.endpoints[0].failures, 1u);
  EXPECT_EQ(s.endpoints[1].failures, 1u);
  // Call 2 opens both breakers; later calls go straight to the third URL.
  ASSERT_EQ(c.VerifySession("t").outcome, Outcome::kValid);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.VerifySession("t").outcome, Outcome::kValid);
  s = c.Stats();
  EXPECT_EQ(s.endpoints[0].state, BreakerState::kOpen);
  EXPECT_EQ(s.endpoints[1].state, BreakerState::kOpen);
  EXPECT_EQ(s.endpoints[0].rejected, 10u);
  EXPECT_EQ(s.endpoints[1].rejected, 10u);
  EXPECT_EQ(b_calls.load(), 2);
  EXPECT_EQ(c_calls.load(), 12);
}

TEST(Client, RoundRobinSpreadsCalls) {
  std::array<std::atomic<int>, 3> hits{};
  std::vector<std::unique_ptr<FakeServer>> servers;
  std::vector<std::string> urls;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(std::make_unique<FakeServer>([&hits, i](const FakeRequest&) {
      ++hits[static_cast<std::size_t>(i)];
      return Ok();
    }));
    urls.push_back(servers.back()->url());
  }
  auto o = FastOptions(urls);
  o.failover = FailoverOrder::kRoundRobin;
  Client c(o);
  for (int i = 0; i < 30; ++i) ASSERT_EQ(c.VerifySession("t").outcome, Outcome::kValid);
  for (auto& h : hits) EXPECT_EQ(h.load(), 10);
}

TEST(Client, ReadTimeoutIsBoundedAndUnavailable) {
  FakeServer slow([](const FakeRequest&) {
    FakeResponse r = Ok();
    r.delay = milliseconds(2000);
    return r;
  });
  auto o = FastOptions({slow.url()});
  o.read_timeout = milliseconds(150);
  o.retry.max_attempts = 2;
  Client c(o);
  RecordedSleeps sleeps;
  sleeps.Install(c);
  auto begin = Clock::now();
  auto v = c.VerifySession("t");
  EXPECT_EQ(v.outcome, Outcome::kUnavailable);
  EXPECT_LT(Clock::now() - begin, milliseconds(1000));
  EXPECT_EQ(slow.requests(), 2);
}

TEST(Client, EveryReplicaDownIsUnavailableNotInvalid) {
  auto o = FastOptions({RefusedUrl(), RefusedUrl()});
  o.retry.max_attempts = 4;
  Client c(o);
  RecordedSleeps sleeps;
  sleeps.Install(c);
  auto v = c.VerifySession("t");
  EXPECT_EQ(v.outcome, Outcome::kUnavailable);
  EXPECT_EQ(c.Stats().attempts, 4u);
  EXPECT_EQ(sleeps.delays.size(), 1u);  // one back-off between the two rounds
}

TEST(Client, CallDeadlineBoundsRetries) {
  FakeServer server([](const FakeRequest&) { return FakeResponse{503, {}, "{}"}; });
  auto o = FastOptions({server.url()});
  o.breaker.failure_threshold = 1000;
  o.retry.max_attempts = 1000;
  o.retry.base_delay = milliseconds(20);
  o.retry.max_delay = milliseconds(20);
  o.retry.call_deadline = milliseconds(300);
  Client c(o);
  auto begin = Clock::now();
  EXPECT_EQ(c.VerifySession("t").outcome, Outcome::kUnavailable);
  EXPECT_LT(Clock::now() - begin, milliseconds(800));
  EXPECT_LT(server.requests(), 100);
}

TEST(Client, AStaleKeptAliveConnectionIsReplacedWithoutCountingAFailure) {
  FakeServer server([&](const FakeRequest&) {
    FakeResponse r = Ok();
    r.close_silently = true;  // like an idle timeout on the server's side
    return r;
  });
  auto o = FastOptions({server.url()});
  o.retry.max_attempts = 1;
  Client c(o);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(c.VerifySession("t").outcome, Outcome::kValid);
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(server.connections(), 5);
  EXPECT_EQ(c.Stats().endpoints[0].failures, 0u);
}

TEST(Client, LogoutIsRetriedAndIntrospectSendsClientCredentials) {
  std::atomic<int> logouts{0};
  FakeServer server([&](const FakeRequest& r) {
    if (r.target == "/v1/auth/logout") {
      return ++logouts == 1 ? FakeResponse{503, {}, "{}"} : FakeResponse{204, {}, ""};
    }
    EXPECT_EQ(r.target, "/oauth2/introspect");
    EXPECT_EQ(r.Header("Authorization").value_or(""), "Basic " + Base64Encode("app:s%3Acret"));
    EXPECT_EQ(r.body, "token=a%2Bb");
    return FakeResponse{200, {}, R"({"active":true,"sub":"u1","client_id":"app","exp":99})"};
  });
  Client c(FastOptions({server.url()}));
  RecordedSleeps sleeps;
  sleeps.Install(c);
  EXPECT_EQ(c.Logout("tok"), Outcome::kValid);
  EXPECT_EQ(logouts.load(), 2);
  auto i = c.Introspect("a+b", "app", "s:cret");
  ASSERT_EQ(i.outcome, Outcome::kValid) << i.error;
  EXPECT_TRUE(i.active);
  EXPECT_EQ(i.sub, "u1");
  EXPECT_EQ(i.exp, 99);
}

TEST(Client, ConcurrentCallsAreSafe) {
  FakeServer server([](const FakeRequest&) { return Ok(); });
  auto o = FastOptions({server.url(), RefusedUrl()});
  o.failover = FailoverOrder::kRoundRobin;
  Client c(o);
  RecordedSleeps sleeps;
  sleeps.Install(c);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) ok += c.VerifySession("t").outcome == Outcome::kValid;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(c.Stats().endpoints[1].state, BreakerState::kOpen);
}

TEST(Encoding, FormAndBase64) {
  EXPECT_EQ(FormEncode("a b+c/~"), "a+b%2Bc%2F~");
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
}

}  // namespace
}  // namespace bulwark::client
