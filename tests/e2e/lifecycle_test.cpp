// Replicas on one data directory, SIGTERM drain under load, SIGKILL durability.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <thread>

#include "tests/e2e/bulwark_server.hpp"

namespace bulwark::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

std::string LoginToken(int port, const std::string& user, const std::string& password) {
  auto r = HttpRequest(port, "POST", "/v1/auth/login", LoginBody(user, password));
  if (r.status != 200) return "";
  return std::string(json::parse(r.body).at("session_token").as_string());
}

int Verify(int port, const std::string& token) {
  return HttpRequest(port, "GET", "/v1/auth/verify", "", {{"Authorization", "Bearer " + token}})
      .status;
}

TEST(LifecycleE2E, TwoProcessesOnOneDataDirectoryShareSessions) {
  TempDir dir;
  ASSERT_TRUE(AddUser(dir.path(), "alice", "alice-password", dir.File("cli.log")));
  BulwarkServer a(dir.path(), dir.File("a.log"));
  BulwarkServer b(dir.path(), dir.File("b.log"));
  ASSERT_TRUE(a.WaitReady()) << a.process().ReadLog();
  ASSERT_TRUE(b.WaitReady()) << b.process().ReadLog();

  std::string token = LoginToken(a.port(), "alice", "alice-password");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(Verify(b.port(), token), 200);
  // Logout on one replica is seen by the other at once.
  EXPECT_EQ(
      HttpRequest(b.port(), "POST", "/v1/auth/logout", "", {{"Authorization", "Bearer " + token}})
          .status,
      204);
  EXPECT_EQ(Verify(a.port(), token), 401);
}

TEST(LifecycleE2E, SigkillRightAfterLoginLosesNothing) {
  TempDir dir;
  ASSERT_TRUE(AddUser(dir.path(), "alice", "alice-password", dir.File("cli.log")));
  std::string token;
  {
    BulwarkServer a(dir.path(), dir.File("a.log"));
    ASSERT_TRUE(a.WaitReady());
    token = LoginToken(a.port(), "alice", "alice-password");
    ASSERT_FALSE(token.empty());
    a.process().Signal(SIGKILL);  // no chance to flush anything
    ASSERT_TRUE(a.process().Wait(seconds(10)).has_value());
  }
  BulwarkServer restarted(dir.path(), dir.File("restarted.log"));
  ASSERT_TRUE(restarted.WaitReady());
  EXPECT_EQ(Verify(restarted.port(), token), 200);
}

// A client that behaves like a load balancer's connection pool: it keeps a
// keep-alive connection to one replica and moves to the other when the
// replica says "Connection: close" or refuses the connection.
struct LoadResult {
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};  // a request was sent and got no answer or not a 200
  std::atomic<int> switched{0};
};

void LoadWorker(int primary_port, int fallback_port, const std::vector<std::string>& tokens,
                steady_clock::time_point until, int max_requests, LoadResult& result) {
  int port = primary_port;
  auto conn = std::make_unique<HttpConnection>(port);
  for (int i = 0; i < max_requests && steady_clock::now() < until; ++i) {
    if (!conn->connected()) {
      port = fallback_port;  // connection refused: the replica stopped accepting
      result.switched++;
      conn = std::make_unique<HttpConnection>(port);
      if (!conn->connected()) {
        result.failed++;
        return;
      }
    }
    const std::string& token = tokens[static_cast<std::size_t>(i) % tokens.size()];
    auto r = conn->Request("GET", "/v1/auth/verify", "", {{"Authorization", "Bearer " + token}});
    if (r.status == 200) {
      result.ok++;
    } else {
      result.failed++;
      ADD_FAILURE() << "request to " << port << " failed: status " << r.status << " " << r.error;
    }
    if (r.status == 0 || r.Header("Connection") == "close") {
      conn = std::make_unique<HttpConnection>(port);
    }
  }
}

TEST(LifecycleE2E, SigtermDrainsWithoutFailingARequest) {
  TempDir dir;
  ASSERT_TRUE(AddUser(dir.path(), "alice", "alice-password", dir.File("cli.log")));
  BulwarkServer a(dir.path(), dir.File("a.log"), {{"BULWARK_DRAIN_DELAY", "1"}});
  BulwarkServer b(dir.path(), dir.File("b.log"));
  ASSERT_TRUE(a.WaitReady());
  ASSERT_TRUE(b.WaitReady());

  std::vector<std::string> tokens;
  for (int i = 0; i < 5; ++i) {
    tokens.push_back(LoginToken(i % 2 ? a.port() : b.port(), "alice", "alice-password"));
    ASSERT_FALSE(tokens.back().empty());
  }

  LoadResult result;
  auto until = steady_clock::now() + seconds(4);
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    bool to_a = w < 3;  // most load on the replica we evict
    workers.emplace_back(LoadWorker, to_a ? a.port() : b.port(), to_a ? b.port() : a.port(),
                         std::cref(tokens), until, 20000, std::ref(result));
  }
  std::this_thread::sleep_for(milliseconds(500));

  auto term_at = steady_clock::now();
  a.process().Signal(SIGTERM);
  // Readiness fails at once (well within the drain delay) while liveness still answers.
  int health_status = 0;
  for (int i = 0; i < 50 && health_status != 503; ++i) {
    health_status = HttpRequest(a.port(), "GET", "/health").status;
    if (health_status != 503) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(health_status, 503);
  EXPECT_LT(steady_clock::now() - term_at, milliseconds(900));
  EXPECT_EQ(HttpRequest(a.port(), "GET", "/health/live").status, 200);
  auto metrics = HttpRequest(a.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("bulwark_draining 1"), std::string::npos);

  auto exit_status = a.process().Wait(seconds(15));
  auto exit_after = steady_clock::now() - term_at;
  for (auto& t : workers) t.join();

  ASSERT_TRUE(exit_status.has_value()) << "replica did not exit";
  EXPECT_EQ(*exit_status, 0) << a.process().ReadLog();
  // Drain delay 1 s + shutdown timeout 5 s is the bound.
  EXPECT_LT(exit_after, seconds(7));
  EXPECT_EQ(result.failed.load(), 0);
  EXPECT_GT(result.ok.load(), 100);
  EXPECT_GE(result.switched.load(), 1);
  for (const auto& token : tokens) EXPECT_EQ(Verify(b.port(), token), 200);
}

TEST(LifecycleE2E, SecondSignalSkipsTheDrainDelay) {
  TempDir dir;
  BulwarkServer a(dir.path(), dir.File("a.log"), {{"BULWARK_DRAIN_DELAY", "30"}});
  ASSERT_TRUE(a.WaitReady());
  auto begin = steady_clock::now();
  a.process().Signal(SIGTERM);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_TRUE(a.process().running());  // still in its 30 s drain delay
  a.process().Signal(SIGINT);
  auto status = a.process().Wait(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
  EXPECT_LT(steady_clock::now() - begin, seconds(10));
}

}  // namespace
}  // namespace bulwark::testing
