// Shared by the integration suites that run real `bulwark serve` replicas
// against servers the suite starts: a replica process, login/verify helpers
// and a bounded load generator that records every failure.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace bulwark::testing {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

inline constexpr const char* kBinary = BULWARK_BINARY;

// One Bulwark replica (`bulwark serve`) against the suite's servers.
class Replica {
 public:
  Replica(const std::map<std::string, std::string>& env, const std::string& log_path)
      : port_(FreePort()) {
    auto e = env;
    e["BULWARK_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    process_ =
        std::make_unique<ChildProcess>(std::vector<std::string>{kBinary, "serve"}, e, log_path);
  }
  int port() const { return port_; }
  ChildProcess& process() { return *process_; }
  bool WaitReady(std::chrono::milliseconds timeout = 20s) {
    auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      if (!process_->running()) return false;
      if (HttpRequest(port_, "GET", "/health").status == 200) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

inline std::string LoginBody(const std::string& user, const std::string& password) {
  return R"({"username":")" + user + R"(","password":")" + password + R"("})";
}

inline std::string TokenOf(const HttpResult& login) {
  boost::system::error_code ec;
  auto v = boost::json::parse(login.body, ec);
  if (ec || !v.is_object()) return "";
  const auto* t = v.as_object().if_contains("session_token");
  return t && t->is_string() ? std::string(t->as_string()) : "";
}

inline int Verify(int port, const std::string& token) {
  return HttpRequest(port, "GET", "/v1/auth/verify", "", {{"Authorization", "Bearer " + token}})
      .status;
}

// DATABASE_URL for a test PostgreSQL server (SPEC §4 form).
inline std::string DatabaseUrl(const PostgresServer& pg) {
  return "postgres://postgres@127.0.0.1:" + std::to_string(pg.port()) + "/postgres?sslmode=disable";
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Base of the suites: `bulwark` processes configured by BackendEnv() plus
// settings that keep tests fast (cheap Argon2id, short drain).
class ReplicaFixture : public ::testing::Test {
 protected:
  virtual std::map<std::string, std::string> BackendEnv() const = 0;

  std::map<std::string, std::string> Env() const {
    std::map<std::string, std::string> env{{"BULWARK_DATA_DIR", dir_.File("data")},
                                           {"BULWARK_LOG_FORMAT", "json"},
                                           {"BULWARK_DRAIN_DELAY", "1"},
                                           {"BULWARK_SHUTDOWN_TIMEOUT", "5"},
                                           {"BULWARK_HASH_THREADS", "1"},
                                           {"BULWARK_ARGON2_ITERATIONS", "1"},
                                           {"BULWARK_ARGON2_MEMORY_KIB", "8192"},
                                           {"BULWARK_COOKIE_SECURE", "false"}};
    for (auto& [k, v] : BackendEnv()) env[k] = v;
    return env;
  }

  // Creates a user with the CLI against the suite's back-ends.
  void AddUser(const std::string& username, const std::string& password) {
    int status = RunCommand({kBinary, "user", "add", "--username", username, "--password-stdin"},
                            Env(), dir_.File("cli.log"), password + "\n");
    ASSERT_EQ(status, 0) << ReadFile(dir_.File("cli.log"));
  }

  std::unique_ptr<Replica> StartReplica(const std::map<std::string, std::string>& extra = {}) {
    auto env = Env();
    for (auto& [k, v] : extra) env[k] = v;
    auto r = std::make_unique<Replica>(
        env, dir_.File("replica-" + std::to_string(++replicas_) + ".log"));
    EXPECT_TRUE(r->WaitReady()) << r->process().ReadLog();
    return r;
  }

  std::string Login(int port, const std::string& user, const std::string& password) {
    HttpResult r = HttpRequest(port, "POST", "/v1/auth/login", LoginBody(user, password));
    EXPECT_EQ(r.status, 200) << r.body;
    return TokenOf(r);
  }

  TempDir dir_;
  int replicas_ = 0;
};

// A bounded load of verifications (and optionally logins) spread over ports.
class Load {
 public:
  Load(std::vector<int> ports, std::vector<std::string> tokens, std::string user = "",
       std::string password = "")
      : ports_(std::move(ports)), tokens_(std::move(tokens)), user_(user), password_(password) {}

  void Start(int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t] { Run(t); });
    }
  }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int requests() const { return requests_.load(); }
  std::vector<std::string> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }
  // Sessions created during the load and acknowledged with 200.
  std::vector<std::string> created() {
    std::lock_guard lock(mu_);
    return created_;
  }

 private:
  void Run(int t) {
    const auto deadline = SteadyClock::now() + 60s;  // bound even if Stop() is never called
    for (int i = 0; !stop_ && i < 100000 && SteadyClock::now() < deadline; ++i) {
      int port = ports_[(t + i) % ports_.size()];
      HttpResult r;
      bool login = !user_.empty() && i % 10 == 0;
      if (login) {
        r = HttpRequest(port, "POST", "/v1/auth/login", LoginBody(user_, password_));
      } else {
        const std::string& token = tokens_[(t * 7 + i) % tokens_.size()];
        r = HttpRequest(port, "GET", "/v1/auth/verify", "", {{"Authorization", "Bearer " + token}});
      }
      requests_.fetch_add(1);
      std::lock_guard lock(mu_);
      if (r.status != 200) {
        failures_.push_back((login ? "login " : "verify ") + std::to_string(r.status) + " on " +
                            std::to_string(port) + " " + r.error + r.body);
      } else if (login) {
        created_.push_back(TokenOf(r));
      }
    }
  }

  std::vector<int> ports_;
  std::vector<std::string> tokens_;
  std::string user_, password_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;
  std::vector<std::string> created_;
  std::vector<std::thread> threads_;
};

inline std::string Summary(const std::vector<std::string>& failures) {
  std::string out;
  for (std::size_t i = 0; i < failures.size() && i < 5; ++i) out += failures[i] + "\n";
  return out;
}

}  // namespace bulwark::testing
