// The drill's load and what it saw: virtual users that log in, verify,
// refresh, validate their JWT locally and log out through HAProxy; one
// application calling the replicas through libbulwark-client; and the
// recorder every request reports to (outcomes, latencies, sessions).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bulwark::drill {

using SteadyClock = std::chrono::steady_clock;

// How one request ended, as the drill classifies failures.
enum class Outcome { kOk, kConnection, kServerError, kUnexpected401, kRefreshRejected, kOther };
const char* OutcomeName(Outcome outcome);

struct Failure {
  double at_s = 0;  // since the load started
  std::string endpoint;
  Outcome outcome = Outcome::kOk;
  std::string detail;
};

class Recorder {
 public:
  explicit Recorder(SteadyClock::time_point start) : start_(start) {}
  void Request(const std::string& endpoint, Outcome outcome, double latency_ms,
               const std::string& detail = "");
  void SessionCreated() { ++sessions_created_; }
  void SessionVerified() { ++sessions_verified_; }
  void SessionLost(const std::string& detail);
  void FamilyBroken(const std::string& detail);
  void ClientCall(bool ok, const std::string& detail);
  double Now() const;

  struct Snapshot {
    std::map<std::string, std::map<std::string, uint64_t>> requests;  // endpoint -> outcome -> n
    std::map<std::string, std::vector<double>> latencies_ms;          // endpoint -> samples
    std::vector<Failure> failures;
    uint64_t total = 0;
    uint64_t sessions_created = 0, sessions_verified = 0, sessions_lost = 0;
    uint64_t families_broken = 0;
    uint64_t client_calls = 0, client_failures = 0;
    std::vector<std::string> lost_details, client_failure_details;
  };
  Snapshot Take() const;

 private:
  SteadyClock::time_point start_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, uint64_t>> requests_;
  std::map<std::string, std::vector<double>> latencies_;
  std::vector<Failure> failures_;
  uint64_t total_ = 0;
  std::atomic<uint64_t> sessions_created_{0}, sessions_verified_{0};
  uint64_t sessions_lost_ = 0, families_broken_ = 0, client_calls_ = 0, client_failures_ = 0;
  std::vector<std::string> lost_details_, client_failure_details_;
};

struct LoadOptions {
  int users = 8;
  int verifies_per_session = 10;
  double rate_per_user = 20;  // requests per second per virtual user (0: as fast as answered)
  std::string username, password;
  int haproxy_port = 0;
  std::vector<int> replica_ports;  // for the libbulwark-client application
  std::string issuer;
};

// Runs the virtual users and the client application until Stop().
class Load {
 public:
  Load(LoadOptions options, Recorder& recorder) : options_(std::move(options)), rec_(recorder) {}
  ~Load() { Stop(); }
  void Start();
  void Stop();

 private:
  void RunUser(int index);
  void RunClientApp();
  void Pace(SteadyClock::time_point& next) const;

  LoadOptions options_;
  Recorder& rec_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace bulwark::drill
