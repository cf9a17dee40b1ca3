// libbulwark-client against real `bulwark serve` replicas on one SQLite data
// directory (valid replicas of each other, see tests/e2e/lifecycle_test.cpp):
// SIGTERM and SIGKILL mid-calls, breakers opening and closing, local JWT
// validation while every replica is down, the example application, and the
// OAuth side (client_credentials token source with failover, introspection,
// revocation, a wrong client secret) against a client registered with the
// real CLI.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/client/client.hpp"
#include "bulwark/client/token_source.hpp"
#include "bulwark/client/token_validator.hpp"
#include "tests/e2e/bulwark_server.hpp"

namespace bulwark::testing {
namespace {

using client::BreakerState;
using client::Outcome;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kIssuer = "http://bulwark.test";
// The OAuth client the OAuth tests register with `bulwark client add`.
constexpr const char* kClientId = "reports";
constexpr const char* kClientSecret = "reports-secret-0123456789abcdefghij";  // >= 32 characters

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A replica on a fixed port, so that it can be restarted where the client expects it.
class Replica {
 public:
  Replica(TempDir& dir, int port, std::string name,
          std::map<std::string, std::string> extra_env = {})
      : dir_(dir), port_(port), name_(std::move(name)), extra_env_(std::move(extra_env)) {}

  void Start() {
    ++starts_;
    std::map<std::string, std::string> env = TestEnv(dir_.path());
    env["BULWARK_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    env["BULWARK_ISSUER"] = kIssuer;
    for (const auto& [k, v] : extra_env_) env[k] = v;
    process_ =
        std::make_unique<ChildProcess>(std::vector<std::string>{kBinary, "serve"}, env,
                                       dir_.File(name_ + "-" + std::to_string(starts_) + ".log"));
  }
  bool WaitReady(milliseconds timeout = seconds(20)) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (!process_->running()) return false;
      if (HttpRequest(port_, "GET", "/health").status == 200) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }
  ChildProcess& process() { return *process_; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir& dir_;
  int port_;
  std::string name_;
  std::map<std::string, std::string> extra_env_;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

client::EndpointStats EndpointOf(client::Client& c, std::size_t i) {
  return c.Stats().endpoints[i];
}

// Polls `pred` every 10 ms for at most `timeout`.
template <typename Pred>
bool Eventually(Pred pred, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return pred();
}

client::ClientOptions ReplicaOptions(const std::vector<std::string>& urls) {
  client::ClientOptions o;
  o.base_urls = urls;
  o.connect_timeout = milliseconds(250);
  o.read_timeout = milliseconds(3000);
  o.failover = client::FailoverOrder::kRoundRobin;
  o.breaker.failure_threshold = 2;
  o.breaker.open_duration = milliseconds(300);
  o.retry.max_attempts = 8;
  o.retry.base_delay = milliseconds(20);
  o.retry.max_delay = milliseconds(400);
  o.retry.call_deadline = milliseconds(10000);
  return o;
}

// Registers an OAuth client (client_credentials; scopes reports:read and
// reports:write) with the real CLI, as an operator would.
bool AddOAuthClient(const std::string& data_dir, const std::string& id, const std::string& secret,
                    const std::string& log_path) {
  return RunBulwark(data_dir,
                    {"client", "add", "--id", id, "--secret-stdin", "--grant", "client_credentials",
                     "--scope", "reports:read", "--scope", "reports:write"},
                    log_path, secret + "\n") == 0;
}

struct FleetOptions {
  std::map<std::string, std::string> env;            // for every replica
  std::map<std::string, std::string> oauth_clients;  // id -> secret, registered before the start
};

struct Fleet {
  TempDir dir;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> urls;

  explicit Fleet(int n, const FleetOptions& options = {}) {
    EXPECT_TRUE(AddUser(dir.path(), "alice", "alice-password", dir.File("cli.log"), "admin"));
    for (const auto& [id, secret] : options.oauth_clients) {
      EXPECT_TRUE(AddOAuthClient(dir.path(), id, secret, dir.File("cli.log")))
          << ReadFile(dir.File("cli.log"));
    }
    for (int i = 0; i < n; ++i) {
      replicas.push_back(
          std::make_unique<Replica>(dir, FreePort(), "r" + std::to_string(i), options.env));
      replicas.back()->Start();
      urls.push_back(replicas.back()->url());
    }
    for (auto& r : replicas) EXPECT_TRUE(r->WaitReady()) << r->process().ReadLog();
  }
};

TEST(ClientE2E, VerifyRidesOutSigtermAndSigkillThroughRetriesAndFailover) {
  Fleet fleet(3);
  auto& r = fleet.replicas;
  client::Client c(ReplicaOptions(fleet.urls));

  auto login = c.Login("alice", "alice-password");
  ASSERT_EQ(login.outcome, Outcome::kValid) << login.error;
  auto wrong = c.Login("alice", "wrong-password");
  EXPECT_EQ(wrong.outcome, Outcome::kInvalid);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&] {
      for (int i = 0; i < 50000 && !stop; ++i) {
        auto v = c.VerifySession(login.session_token);
        if (v.outcome == Outcome::kValid && v.identity.user == "alice") {
          ++ok;
        } else {
          ++failed;
          ADD_FAILURE() << "call failed: " << client::OutcomeName(v.outcome) << " " << v.error;
        }
      }
    });
  }
  auto stop_workers = [&] {
    stop = true;
    for (auto& t : workers) t.join();
    workers.clear();
  };

  std::this_thread::sleep_for(milliseconds(500));
  int before_kills = ok.load();
  r[0]->process().Signal(SIGTERM);  // drains (0.5 s), then refuses connections
  std::this_thread::sleep_for(milliseconds(200));
  r[1]->process().Signal(SIGKILL);  // in-flight requests are lost
  ASSERT_TRUE(r[1]->process().Wait(seconds(10)).has_value());
  bool killed_opened = Eventually([&] { return EndpointOf(c, 1).times_opened >= 1; }, seconds(5));
  EXPECT_TRUE(killed_opened);
  auto term_exit = r[0]->process().Wait(seconds(15));
  ASSERT_TRUE(term_exit.has_value());
  EXPECT_EQ(*term_exit, 0);
  bool termed_opened = Eventually([&] { return EndpointOf(c, 0).times_opened >= 1; }, seconds(5));
  // With two replicas gone, every call lands on the third.
  std::this_thread::sleep_for(milliseconds(500));
  int during_outage = ok.load();

  // Bring both back on their ports: the half-open probes close the breakers.
  r[1]->Start();
  r[0]->Start();
  ASSERT_TRUE(r[1]->WaitReady());
  ASSERT_TRUE(r[0]->WaitReady());
  bool closed_again = Eventually(
      [&] {
        auto s = c.Stats();
        return s.endpoints[0].state == BreakerState::kClosed &&
               s.endpoints[1].state == BreakerState::kClosed && s.endpoints[1].times_closed >= 1;
      },
      seconds(10));
  std::this_thread::sleep_for(milliseconds(300));
  uint64_t attempts_r1_before = EndpointOf(c, 1).attempts;
  std::this_thread::sleep_for(milliseconds(300));
  stop_workers();

  auto s = c.Stats();
  std::printf(
      "calls %llu ok %d failed %d attempts %llu retries %llu failovers %llu "
      "(before kills %d, by the end of the outage %d)\n",
      static_cast<unsigned long long>(s.calls), ok.load(), failed.load(),
      static_cast<unsigned long long>(s.attempts), static_cast<unsigned long long>(s.retries),
      static_cast<unsigned long long>(s.failovers), before_kills, during_outage);
  for (const auto& e : s.endpoints) {
    std::printf(
        "  %s %s attempts %llu failures %llu rejected %llu opened %llu half-opened %llu "
        "closed %llu%s%s\n",
        e.base_url.c_str(), client::BreakerStateName(e.state),
        static_cast<unsigned long long>(e.attempts), static_cast<unsigned long long>(e.failures),
        static_cast<unsigned long long>(e.rejected),
        static_cast<unsigned long long>(e.times_opened),
        static_cast<unsigned long long>(e.times_half_opened),
        static_cast<unsigned long long>(e.times_closed),
        e.last_failure.empty() ? "" : ", last failure: ", e.last_failure.c_str());
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 200);
  EXPECT_GT(during_outage, before_kills);
  EXPECT_GE(s.retries, 1u);
  EXPECT_GE(s.failovers, 1u);
  EXPECT_TRUE(termed_opened);
  EXPECT_TRUE(closed_again);
  EXPECT_GE(s.endpoints[1].times_opened, 1u);
  EXPECT_GE(s.endpoints[1].times_half_opened, 1u);
  EXPECT_GE(s.endpoints[1].times_closed, 1u);
  EXPECT_GT(s.endpoints[1].attempts, attempts_r1_before);  // back in the rotation
  // The survivor carried every call through the outage. Its breaker is not
  // required to stay shut (a shared CI machine once saw it open, cause
  // unknown: hence last_failure), only to end closed with no call failed and
  // at most 1 % of its own attempts failed.
  EXPECT_LE(s.endpoints[2].failures * 100, s.endpoints[2].attempts) << s.endpoints[2].last_failure;
  for (const auto& e : s.endpoints) EXPECT_EQ(e.state, BreakerState::kClosed);
  EXPECT_EQ(c.Logout(login.session_token), Outcome::kValid);
  EXPECT_EQ(c.VerifySession(login.session_token).outcome, Outcome::kInvalid);
}

TEST(ClientE2E, EveryReplicaDownIsUnavailableNeverInvalid) {
  Fleet fleet(2);
  client::Client c(ReplicaOptions(fleet.urls));
  auto login = c.Login("alice", "alice-password");
  ASSERT_EQ(login.outcome, Outcome::kValid) << login.error;
  for (auto& r : fleet.replicas) {
    r->process().Signal(SIGKILL);
    ASSERT_TRUE(r->process().Wait(seconds(10)).has_value());
  }
  auto begin = Clock::now();
  auto v = c.VerifySession(login.session_token);
  EXPECT_EQ(v.outcome, Outcome::kUnavailable) << v.error;
  EXPECT_LT(Clock::now() - begin, seconds(11));
  // Breakers now open: the next call fails fast.
  begin = Clock::now();
  EXPECT_EQ(c.VerifySession(login.session_token).outcome, Outcome::kUnavailable);
  EXPECT_LT(Clock::now() - begin, seconds(3));
}

TEST(ClientE2E, JwtValidatesLocallyWhileEveryReplicaIsDown) {
  Fleet fleet(3);
  client::Client c(ReplicaOptions(fleet.urls));
  auto login = c.Login("alice", "alice-password");
  ASSERT_EQ(login.outcome, Outcome::kValid) << login.error;
  if (login.access_token.empty()) GTEST_SKIP() << "this server issues no access_token yet";
  client::TokenValidatorOptions vo;
  vo.issuer = kIssuer;
  client::TokenValidator validator(c, vo);
  auto first = validator.Validate(login.access_token);
  ASSERT_EQ(first.outcome, Outcome::kValid) << first.error;
  EXPECT_EQ(first.claims.username, "alice");
  EXPECT_EQ(validator.Stats().fetches, 1u);

  for (auto& r : fleet.replicas) r->process().Signal(SIGKILL);
  for (auto& r : fleet.replicas) ASSERT_TRUE(r->process().Wait(seconds(10)).has_value());
  for (int i = 0; i < 100; ++i) {
    auto v = validator.Validate(login.access_token);
    ASSERT_EQ(v.outcome, Outcome::kValid) << v.error;
  }
  // The session check needs Bulwark: unavailable, not invalid.
  EXPECT_EQ(c.VerifySession(login.session_token).outcome, Outcome::kUnavailable);
  // A forged token is still rejected locally.
  std::string forged = login.access_token;
  forged[forged.size() - 2] = forged[forged.size() - 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(validator.Validate(forged).outcome, Outcome::kInvalid);
}

TEST(ClientE2E, ExampleApplicationChecksTokens) {
  Fleet fleet(2);
  client::Client c(ReplicaOptions(fleet.urls));
  auto login = c.Login("alice", "alice-password");
  ASSERT_EQ(login.outcome, Outcome::kValid) << login.error;
  std::string urls = fleet.urls[0] + "," + fleet.urls[1];
  auto run = [&](std::vector<std::string> tokens, const std::string& log) {
    std::vector<std::string> argv{PROTECTED_API_BINARY, "--bulwark", urls, "--issuer", kIssuer};
    argv.insert(argv.end(), tokens.begin(), tokens.end());
    return RunCommand(argv, {}, fleet.dir.File(log), "", seconds(30));
  };
  EXPECT_EQ(run({login.session_token}, "ok.log"), 0);
  EXPECT_NE(ReadFile(fleet.dir.File("ok.log")).find("valid bulwark-verify alice admin"),
            std::string::npos)
      << ReadFile(fleet.dir.File("ok.log"));
  EXPECT_EQ(run({"Xq1yWm3Pq8bqJ0pYlq4bJt1rQe1s7oU6bVtVQ6mJ9Hc"}, "bad.log"), 1);
  if (!login.access_token.empty()) {
    EXPECT_EQ(run({login.access_token}, "jwt.log"), 0) << ReadFile(fleet.dir.File("jwt.log"));
    EXPECT_NE(ReadFile(fleet.dir.File("jwt.log")).find("valid local-jwt alice"), std::string::npos);
  }
  // Bulwark gone: unavailable (exit 2), not invalid.
  fleet.replicas[0]->process().Signal(SIGKILL);
  EXPECT_EQ(run({login.session_token}, "failover.log"), 0);  // the other replica answers
  fleet.replicas[1]->process().Signal(SIGKILL);
  for (auto& r : fleet.replicas) ASSERT_TRUE(r->process().Wait(seconds(10)).has_value());
  EXPECT_EQ(run({login.session_token}, "down.log"), 2);
}

// `bulwark serve` reads BULWARK_TLS_CERT but does not serve TLS yet, so the
// TLS transport is checked against `openssl s_server -www` (HTTP/1.0, a body
// delimited by the end of the connection).
TEST(ClientE2E, HttpsWithACaFileVerifiesTheServer) {
  TempDir dir;
  // A self-signed certificate for 127.0.0.1 that is its own CA.
  ASSERT_EQ(RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir.File("key.pem"), "-out",
                        dir.File("cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"},
                       {}, dir.File("openssl.log")),
            0)
      << ReadFile(dir.File("openssl.log"));
  int port = FreePort();
  ChildProcess server(
      {"/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
       dir.File("cert.pem"), "-key", dir.File("key.pem"), "-www", "-quiet"},
      {}, dir.File("s_server.log"));
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  auto options = ReplicaOptions({url});
  options.ca_file = dir.File("cert.pem");
  options.retry.max_attempts = 1;
  client::Client c(options);
  client::Request root;
  root.target = "/";
  client::Response r;
  ASSERT_TRUE(Eventually(
      [&] {
        r = c.Call(root);
        return r.outcome == Outcome::kValid;
      },
      seconds(20)))
      << r.error << "\n"
      << server.ReadLog();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("TLS"), std::string::npos) << r.body;  // s_server's status page

  // Without the CA the server is not trusted: unavailable, never invalid.
  auto untrusted_options = ReplicaOptions({url});
  untrusted_options.retry.max_attempts = 1;
  client::Client untrusted(untrusted_options);
  auto v = untrusted.VerifySession("any");
  EXPECT_EQ(v.outcome, Outcome::kUnavailable);
  EXPECT_NE(v.error.find("TLS handshake failed"), std::string::npos) << v.error;
  // A certificate for another name is refused too.
  auto wrong_name = ReplicaOptions({"https://localhost:" + std::to_string(port)});
  wrong_name.ca_file = dir.File("cert.pem");
  wrong_name.retry.max_attempts = 1;
  client::Client mismatched(wrong_name);
  auto m = mismatched.Call(root);
  EXPECT_EQ(m.outcome, Outcome::kUnavailable);
  EXPECT_NE(m.error.find("TLS handshake failed"), std::string::npos) << m.error;
}

// ---------------------------------------------------------------------------
// OAuth: the client library against the real /oauth2/token, /oauth2/introspect
// and /oauth2/revoke, with kClientId registered through `bulwark client add`.

client::ClientCredentialsOptions ReportsCredentials(const std::string& scope) {
  client::ClientCredentialsOptions cc;
  cc.client_id = kClientId;
  cc.client_secret = kClientSecret;
  cc.scope = scope;
  return cc;
}

client::TokenValidatorOptions ValidatorOptions() {
  client::TokenValidatorOptions vo;
  vo.issuer = kIssuer;
  vo.audience = kIssuer;  // BULWARK_ACCESS_TOKEN_AUDIENCE defaults to the issuer
  return vo;
}

// The same JWT with one signature character changed.
std::string Tampered(std::string jwt) {
  char& c = jwt[jwt.size() - 2];
  c = c == 'A' ? 'B' : 'A';
  return jwt;
}

// a - b in milliseconds (readable in failure messages, unlike time_points).
int64_t Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<milliseconds>(a - b).count();
}

int64_t UnixNow() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// POST /oauth2/revoke (RFC 7009) with client_secret_basic.
client::Request RevokeRequest(const std::string& token) {
  client::Request req;
  req.method = "POST";
  req.target = "/oauth2/revoke";
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Authorization",
                  "Basic " + client::Base64Encode(std::string(kClientId) + ":" + kClientSecret)}};
  req.body = "token=" + client::FormEncode(token);
  req.idempotency = client::Idempotency::kIdempotent;  // RFC 7009: revoking twice is harmless
  return req;
}

// Sum of a counter over every replica's GET /metrics (-1 when a replica does not answer).
double MetricOverFleet(Fleet& fleet, const std::string& name) {
  double sum = 0;
  for (auto& r : fleet.replicas) {
    auto m = HttpRequest(r->port(), "GET", "/metrics");
    if (m.status != 200) return -1;
    std::istringstream lines(m.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name + " ", 0) == 0 || line.rfind(name + "{", 0) == 0) {
        sum += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
  }
  return sum;
}

// The token source gets a real access token, which validates locally against
// the JWKS from the replicas; it is renewed at its refresh point, before it
// expires, while the replica every call starts at (and then the next one) has
// been SIGKILLed, so each renewal must fail over; with every replica gone the
// current token is handed out until it expires, and then the answer is
// "unavailable", never "invalid".
TEST(ClientE2E, ClientCredentialsTokenIsRenewedBeforeExpiryAcrossSigkilledReplicas) {
  constexpr int kTtl = 4;  // seconds
  Fleet fleet(3,
              {{{"BULWARK_ACCESS_TOKEN_TTL", std::to_string(kTtl)}}, {{kClientId, kClientSecret}}});
  auto& r = fleet.replicas;
  auto options = ReplicaOptions(fleet.urls);
  // Every call starts at r0: once it is dead, a renewal can only succeed by failing over.
  options.failover = client::FailoverOrder::kOrdered;
  client::Client c(options);
  auto cc = ReportsCredentials("reports:read");
  cc.refresh_fraction = 0.5;  // a 4 s token is renewed after 2 s (the 30 s skew exceeds it)
  client::ClientCredentialsTokenSource source(c, cc);
  client::TokenValidator validator(c, ValidatorOptions());

  auto first = source.Get();
  ASSERT_EQ(first.outcome, Outcome::kValid) << first.error;
  EXPECT_EQ(first.token_type, "Bearer");
  EXPECT_EQ(first.expires_in, seconds(kTtl));
  EXPECT_EQ(Ms(first.expires_at, source.refresh_at()), kTtl * 1000 / 2);
  EXPECT_EQ(source.Get().token, first.token);  // cached until the refresh point
  EXPECT_EQ(source.grants(), 1u);

  auto local = validator.Validate(first.token);
  ASSERT_EQ(local.outcome, Outcome::kValid) << local.error;
  EXPECT_EQ(local.claims.iss, kIssuer);
  EXPECT_EQ(local.claims.sub, kClientId);
  EXPECT_EQ(local.claims.client_id, kClientId);
  EXPECT_EQ(local.claims.scope, "reports:read");
  EXPECT_TRUE(local.claims.username.empty());
  EXPECT_EQ(local.claims.exp - local.claims.iat, kTtl);
  EXPECT_EQ(validator.Stats().fetches, 1u);
  EXPECT_EQ(validator.Validate(Tampered(first.token)).outcome, Outcome::kInvalid);

  // Kills `victim`, then polls Get() until the token changes (bounded by the
  // current token's expiry plus a second); returns the new token.
  auto renew_after_killing = [&](std::size_t victim, const client::AccessToken& current) {
    r[victim]->process().Signal(SIGKILL);
    EXPECT_TRUE(r[victim]->process().Wait(seconds(10)).has_value());
    const auto stats_before = c.Stats();
    const uint64_t grants_before = source.grants();
    const auto refresh_at = source.refresh_at();
    client::AccessToken next = current;
    auto got_at = Clock::now();
    for (int i = 0; i < 1000 && Clock::now() < current.expires_at + seconds(1); ++i) {
      next = source.Get();
      got_at = Clock::now();
      if (next.outcome != Outcome::kValid || next.token != current.token) break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    EXPECT_EQ(next.outcome, Outcome::kValid) << next.error;
    EXPECT_NE(next.token, current.token) << "not renewed by the time it expired";
    const auto obtained = next.expires_at - next.expires_in;  // when the renewal started
    EXPECT_GE(Ms(obtained, refresh_at), 0);                   // not before its refresh point
    EXPECT_GT(Ms(current.expires_at, got_at), 0) << "renewed after expiry";
    EXPECT_EQ(source.grants(), grants_before + 1);  // one grant request, which failed over
    const auto stats = c.Stats();
    EXPECT_GE(stats.failovers, stats_before.failovers + 1);
    EXPECT_GE(stats.endpoints[victim].failures, stats_before.endpoints[victim].failures + 1)
        << "the renewal never tried the killed replica";
    EXPECT_EQ(stats.unavailable, stats_before.unavailable);
    EXPECT_EQ(Ms(next.expires_at, source.refresh_at()), kTtl * 1000 / 2);
    return next;
  };

  auto second = renew_after_killing(0, first);
  auto v2 = validator.Validate(second.token);
  ASSERT_EQ(v2.outcome, Outcome::kValid) << v2.error;
  EXPECT_EQ(v2.claims.client_id, kClientId);
  EXPECT_NE(v2.claims.jti, local.claims.jti);
  EXPECT_GE(v2.claims.exp, local.claims.exp);

  auto third = renew_after_killing(1, second);  // r0 and r1 down: only r2 can answer
  auto v3 = validator.Validate(third.token);
  ASSERT_EQ(v3.outcome, Outcome::kValid) << v3.error;
  EXPECT_NE(v3.claims.jti, v2.claims.jti);

  // The last replica goes too: past the refresh point the renewal fails, and
  // the current token is still handed out (and still validates locally) until
  // it expires; then the source answers unavailable.
  r[2]->process().Signal(SIGKILL);
  ASSERT_TRUE(r[2]->process().Wait(seconds(10)).has_value());
  std::this_thread::sleep_until(source.refresh_at() + milliseconds(50));
  const uint64_t grants_before_outage = source.grants();
  auto kept = source.Get();
  EXPECT_EQ(kept.outcome, Outcome::kValid) << kept.error;
  EXPECT_EQ(kept.token, third.token);
  EXPECT_EQ(source.grants(), grants_before_outage + 1);  // it did try
  EXPECT_EQ(validator.Validate(kept.token).outcome, Outcome::kValid);
  client::AccessToken after_expiry = kept;
  auto ended_at = Clock::now();
  for (int i = 0; i < 1000 && Clock::now() < third.expires_at + seconds(20); ++i) {
    after_expiry = source.Get();
    ended_at = Clock::now();
    if (after_expiry.outcome != Outcome::kValid) break;
    EXPECT_EQ(after_expiry.token, third.token);
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(after_expiry.outcome, Outcome::kUnavailable) << after_expiry.error;
  EXPECT_TRUE(after_expiry.token.empty());
  EXPECT_GE(Ms(ended_at, third.expires_at), 0);  // the old token lasted until its expiry
}

// RFC 7662 through Client::Introspect: active for a real token (on every
// replica), inactive for garbage and, after /oauth2/revoke, on every replica.
TEST(ClientE2E, IntrospectIsActiveForARealTokenAndInactiveForGarbageOrRevoked) {
  Fleet fleet(3, {{}, {{kClientId, kClientSecret}}});
  client::Client c(ReplicaOptions(fleet.urls));       // round-robin over the three
  std::vector<std::unique_ptr<client::Client>> only;  // one client per replica
  for (const auto& url : fleet.urls)
    only.push_back(std::make_unique<client::Client>(ReplicaOptions({url})));
  client::ClientCredentialsTokenSource source(c, ReportsCredentials("reports:read reports:write"));
  auto token = source.Get();
  ASSERT_EQ(token.outcome, Outcome::kValid) << token.error;

  auto active = c.Introspect(token.token, kClientId, kClientSecret);
  ASSERT_EQ(active.outcome, Outcome::kValid) << active.error;
  EXPECT_TRUE(active.active);
  EXPECT_EQ(active.client_id, kClientId);
  EXPECT_EQ(active.sub, kClientId);
  EXPECT_EQ(active.scope, "reports:read reports:write");
  EXPECT_TRUE(active.username.empty());
  EXPECT_GT(active.exp, UnixNow());
  EXPECT_LE(active.exp, UnixNow() + 300 + 5);  // default BULWARK_ACCESS_TOKEN_TTL
  for (std::size_t i = 0; i < only.size(); ++i) {
    auto a = only[i]->Introspect(token.token, kClientId, kClientSecret);
    EXPECT_EQ(a.outcome, Outcome::kValid) << fleet.urls[i] << ": " << a.error;
    EXPECT_TRUE(a.active) << fleet.urls[i];
  }

  for (const std::string& garbage :
       {std::string("garbage"), std::string("a.b.c"), std::string(), Tampered(token.token)}) {
    auto g = c.Introspect(garbage, kClientId, kClientSecret);
    EXPECT_EQ(g.outcome, Outcome::kValid) << "'" << garbage << "': " << g.error;
    EXPECT_FALSE(g.active) << "'" << garbage << "'";
    EXPECT_TRUE(g.client_id.empty() && g.sub.empty() && g.scope.empty()) << "'" << garbage << "'";
  }

  auto revoked = c.Call(RevokeRequest(token.token));
  ASSERT_EQ(revoked.outcome, Outcome::kValid) << revoked.error;
  EXPECT_EQ(revoked.status, 200);
  auto revoker = std::find(fleet.urls.begin(), fleet.urls.end(), revoked.base_url);
  ASSERT_NE(revoker, fleet.urls.end()) << revoked.base_url;
  // The replica that revoked it knows at once ...
  auto at_once =
      only[revoker - fleet.urls.begin()]->Introspect(token.token, kClientId, kClientSecret);
  EXPECT_EQ(at_once.outcome, Outcome::kValid) << at_once.error;
  EXPECT_FALSE(at_once.active) << revoked.base_url;
  // ... and every replica soon (at once, or within the moment a replica may
  // trust a recent "not revoked" answer for a token it cached: 5 s allowed).
  for (std::size_t i = 0; i < only.size(); ++i) {
    client::IntrospectionResult last;
    auto begin = Clock::now();
    bool inactive = Eventually(
        [&] {
          last = only[i]->Introspect(token.token, kClientId, kClientSecret);
          return last.outcome == Outcome::kValid && !last.active;
        },
        seconds(5));
    EXPECT_TRUE(inactive) << fleet.urls[i] << " " << client::OutcomeName(last.outcome) << " "
                          << last.error << " active=" << last.active;
    std::printf("  %s: inactive after %lld ms\n", fleet.urls[i].c_str(),
                static_cast<long long>(
                    std::chrono::duration_cast<milliseconds>(Clock::now() - begin).count()));
  }
  for (std::size_t i = 0; i < fleet.urls.size(); ++i) {  // round-robin: each replica once
    auto again = c.Introspect(token.token, kClientId, kClientSecret);
    EXPECT_EQ(again.outcome, Outcome::kValid) << again.error;
    EXPECT_FALSE(again.active);
  }
  // Revoking it again is fine (RFC 7009 §2.2).
  EXPECT_EQ(c.Call(RevokeRequest(token.token)).status, 200);

  // A JWT validated locally never sees the revocation (docs/client.md): the
  // reason to introspect where a revoked token must be refused at once.
  client::TokenValidator validator(c, ValidatorOptions());
  EXPECT_EQ(validator.Validate(token.token).outcome, Outcome::kValid);

  // A fresh token for the same client is active.
  source.Invalidate();
  auto fresh = source.Get();
  ASSERT_EQ(fresh.outcome, Outcome::kValid) << fresh.error;
  EXPECT_NE(fresh.token, token.token);
  auto fresh_active = c.Introspect(fresh.token, kClientId, kClientSecret);
  EXPECT_EQ(fresh_active.outcome, Outcome::kValid) << fresh_active.error;
  EXPECT_TRUE(fresh_active.active);
}

// A wrong client secret is an invalid credential: kInvalid with
// "invalid_client", one request (no retry, no failover), no breaker failure,
// never "unavailable" — for the token source (both client authentication
// methods) and for introspection.
TEST(ClientE2E, WrongClientSecretIsInvalidAndNotRetried) {
  Fleet fleet(2, {{}, {{kClientId, kClientSecret}}});
  client::Client c(ReplicaOptions(fleet.urls));
  const double invalid_before = MetricOverFleet(fleet, "bulwark_oauth_invalid_client_total");
  ASSERT_GE(invalid_before, 0);

  // One call; checks that it was a single attempt that left the breakers alone.
  auto single_attempt = [&](const char* what, auto&& call) {
    const auto before = c.Stats();
    call();
    const auto after = c.Stats();
    EXPECT_EQ(after.calls, before.calls + 1) << what;
    EXPECT_EQ(after.attempts, before.attempts + 1) << what;
    EXPECT_EQ(after.retries, before.retries) << what;
    EXPECT_EQ(after.failovers, before.failovers) << what;
    EXPECT_EQ(after.unavailable, before.unavailable) << what;
    for (std::size_t i = 0; i < after.endpoints.size(); ++i) {
      EXPECT_EQ(after.endpoints[i].failures, before.endpoints[i].failures) << what;
      EXPECT_EQ(after.endpoints[i].state, BreakerState::kClosed) << what;
    }
  };

  auto wrong = ReportsCredentials("reports:read");
  wrong.client_secret = "not-the-secret-0123456789abcdefghijkl";
  client::ClientCredentialsTokenSource basic(c, wrong);
  for (int i = 0; i < 2; ++i) {  // nothing cached: asked again, refused again
    single_attempt("client_secret_basic", [&] {
      auto t = basic.Get();
      EXPECT_EQ(t.outcome, Outcome::kInvalid) << t.error;
      EXPECT_EQ(t.error, "invalid_client");
      EXPECT_TRUE(t.token.empty());
    });
  }
  EXPECT_EQ(basic.grants(), 2u);

  wrong.basic_auth = false;
  client::ClientCredentialsTokenSource post(c, wrong);
  single_attempt("client_secret_post", [&] {
    auto t = post.Get();
    EXPECT_EQ(t.outcome, Outcome::kInvalid) << t.error;
    EXPECT_EQ(t.error, "invalid_client");
  });

  auto unknown = ReportsCredentials("reports:read");
  unknown.client_id = "nobody";
  client::ClientCredentialsTokenSource stranger(c, unknown);
  single_attempt("unknown client", [&] {
    auto t = stranger.Get();
    EXPECT_EQ(t.outcome, Outcome::kInvalid) << t.error;
    EXPECT_EQ(t.error, "invalid_client");
  });

  single_attempt("introspection", [&] {
    auto i = c.Introspect("garbage", kClientId, "not-the-secret-0123456789abcdefghijkl");
    EXPECT_EQ(i.outcome, Outcome::kInvalid) << i.error;
    EXPECT_FALSE(i.active);
  });

  // Five refused client authentications reached the replicas, one each.
  EXPECT_EQ(MetricOverFleet(fleet, "bulwark_oauth_invalid_client_total"), invalid_before + 5);

  // The right secret with a scope the client may not have: invalid_scope.
  client::ClientCredentialsTokenSource greedy(c, ReportsCredentials("admin"));
  single_attempt("invalid scope", [&] {
    auto t = greedy.Get();
    EXPECT_EQ(t.outcome, Outcome::kInvalid) << t.error;
    EXPECT_EQ(t.error, "invalid_scope");
  });
  // And the right secret and scope work through the same client.
  client::ClientCredentialsTokenSource right(c, ReportsCredentials("reports:read"));
  auto ok = right.Get();
  EXPECT_EQ(ok.outcome, Outcome::kValid) << ok.error;
  EXPECT_FALSE(ok.token.empty());
}

// A secret made as docs/oauth.md suggests (`openssl rand -base64 32`) holds
// '+', '/' and '='. client_secret_post form-encodes it in the body, which the
// server decodes: it works.
constexpr const char* kBase64ClientId = "batch";
constexpr const char* kBase64Secret = "q5+Xz/1kR0b7Hn2cVv8Wm4Tt6Yp3Lj9Gs0Ae1Df2Ui=";

TEST(ClientE2E, Base64SecretWorksWithClientSecretPost) {
  Fleet fleet(2, {{}, {{kBase64ClientId, kBase64Secret}}});
  client::Client c(ReplicaOptions(fleet.urls));
  client::ClientCredentialsOptions cc{kBase64ClientId, kBase64Secret, "reports:read"};
  cc.basic_auth = false;
  client::ClientCredentialsTokenSource source(c, cc);
  auto t = source.Get();
  ASSERT_EQ(t.outcome, Outcome::kValid) << t.error;
  client::TokenValidator validator(c, ValidatorOptions());
  auto v = validator.Validate(t.token);
  EXPECT_EQ(v.outcome, Outcome::kValid) << v.error;
  EXPECT_EQ(v.claims.client_id, kBase64ClientId);
}

// RFC 6749 §2.3.1: the client form-encodes id and secret before Base64 in
// client_secret_basic ('+' -> %2B, '/' -> %2F, '=' -> %3D); the server decodes.
TEST(ClientE2E, Base64SecretWorksWithClientSecretBasic) {
  Fleet fleet(2, {{}, {{kBase64ClientId, kBase64Secret}}});
  client::Client c(ReplicaOptions(fleet.urls));
  client::ClientCredentialsTokenSource source(
      c, client::ClientCredentialsOptions{kBase64ClientId, kBase64Secret, "reports:read"});
  auto t = source.Get();
  ASSERT_EQ(t.outcome, Outcome::kValid) << t.error;
  auto i = c.Introspect(t.token, kBase64ClientId, kBase64Secret);
  EXPECT_EQ(i.outcome, Outcome::kValid) << i.error;
  EXPECT_TRUE(i.active);
}

}  // namespace
}  // namespace bulwark::testing
