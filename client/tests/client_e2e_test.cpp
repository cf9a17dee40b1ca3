// libbulwark-client against real `bulwark serve` replicas on one SQLite data
// directory (valid replicas of each other, see tests/e2e/lifecycle_test.cpp):
// SIGTERM and SIGKILL mid-calls, breakers opening and closing, local JWT
// validation while every replica is down, and the example application.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "bulwark/client/client.hpp"
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

struct Fleet {
  TempDir dir;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> urls;

  explicit Fleet(int n) {
    EXPECT_TRUE(AddUser(dir.path(), "alice", "alice-password", dir.File("cli.log"), "admin"));
    for (int i = 0; i < n; ++i) {
      replicas.push_back(std::make_unique<Replica>(dir, FreePort(), "r" + std::to_string(i)));
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

}  // namespace
}  // namespace bulwark::testing
