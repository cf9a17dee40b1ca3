// Fixture for end-to-end tests: the real `bulwark` binary on 127.0.0.1.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace bulwark::testing {

inline const char* kBinary = BULWARK_BINARY;

// Settings that keep tests fast and deterministic. Hashing at nice 19 rather
// than the default SCHED_IDLE: tests share one cgroup with their own load
// generators and with other tests (ctest -j), which would starve an idle-policy
// hash; HashPriorityE2E covers the default.
inline std::map<std::string, std::string> TestEnv(const std::string& data_dir) {
  return {{"BULWARK_DATA_DIR", data_dir},     {"BULWARK_LOG_FORMAT", "json"},
          {"BULWARK_DRAIN_DELAY", "0.5"},     {"BULWARK_SHUTDOWN_TIMEOUT", "5"},
          {"BULWARK_ARGON2_ITERATIONS", "2"}, {"BULWARK_ARGON2_MEMORY_KIB", "19456"},
          {"BULWARK_COOKIE_SECURE", "true"},  {"BULWARK_HASH_PRIORITY", "low"}};
}

class BulwarkServer {
 public:
  BulwarkServer(const std::string& data_dir, const std::string& log_path,
                std::map<std::string, std::string> extra_env = {})
      : port_(FreePort()) {
    auto env = TestEnv(data_dir);
    env["BULWARK_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    for (auto& [k, v] : extra_env) env[k] = v;
    process_ =
        std::make_unique<ChildProcess>(std::vector<std::string>{kBinary, "serve"}, env, log_path);
  }

  int port() const { return port_; }
  ChildProcess& process() { return *process_; }

  // Polls /health until 200 (bounded). False when the process died or never got ready.
  bool WaitReady(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!process_->running()) return false;
      if (HttpRequest(port_, "GET", "/health").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

// `bulwark <args...>` against a data directory; returns the exit status.
inline int RunBulwark(const std::string& data_dir, std::vector<std::string> args,
                      const std::string& log_path, const std::string& stdin_data = "") {
  args.insert(args.begin(), kBinary);
  return RunCommand(args, TestEnv(data_dir), log_path, stdin_data);
}

// Creates a user with the CLI; returns true on success.
inline bool AddUser(const std::string& data_dir, const std::string& username,
                    const std::string& password, const std::string& log_path,
                    const std::string& role = "") {
  std::vector<std::string> args{"user", "add", "--username", username, "--password-stdin"};
  if (!role.empty()) {
    args.push_back("--role");
    args.push_back(role);
  }
  return RunBulwark(data_dir, args, log_path, password + "\n") == 0;
}

inline std::string LoginBody(const std::string& user, const std::string& password) {
  return R"({"username":")" + user + R"(","password":")" + password + R"("})";
}

}  // namespace bulwark::testing
