// bulwark-drill: proves on one machine that evictions lose no session
// (SPEC §11, docs/drill.md). Starts PostgreSQL, a Redis Cluster, three
// Bulwark replicas and HAProxy on loopback, drives a bounded load through
// them, evicts replicas as a kubelet would, fails over a Redis primary,
// restarts PostgreSQL, and reports what every request saw.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "drill/load.hpp"
#include "drill/topology.hpp"

namespace bulwark::drill {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::atomic<bool> g_interrupted{false};
void OnSignal(int) { g_interrupted = true; }

struct Flags {
  int duration_s = 60;
  int users = 8;
  double rate = 20;
  int verifies = 10;
  int evictions = 6;
  int sigkills = 1;
  bool redis_failover = true;
  bool pg_restart = false;
  bool sentinel = false;
  int grace_s = 10;
  bool json = false;
  double max_failure_rate = 0;
  std::string binary;
};

enum class Kind { kEviction, kSigkill, kRedisFailover, kPostgresRestart };
// Per Kind: the report's key and its description.
struct KindText {
  const char* key;
  const char* name;
};
constexpr KindText kKindTexts[] = {
    {"sigterm", "eviction (SIGTERM, SIGKILL after the grace period, replacement)"},
    {"sigkill", "unannounced SIGKILL, replacement"},
    {"redis_failover", "Redis primary SIGKILLed (failover)"},
    {"postgres_restart", "PostgreSQL restart"},
};
const char* KindKey(Kind k) { return kKindTexts[static_cast<int>(k)].key; }
const char* KindName(Kind k) { return kKindTexts[static_cast<int>(k)].name; }

struct Event {
  double planned_s = 0;
  Kind kind = Kind::kEviction;
  int replica = -1;
  double start_s = 0, end_s = 0;
  bool sigkill_needed = false;
  int64_t took_ms = 0;
  int failures_around = 0;
};

// The evictions one at a time (a PodDisruptionBudget minAvailable 2 allows
// no more), spread over the middle of the run, the other disruptions between.
std::vector<Event> Plan(const Flags& f, int replicas) {
  std::vector<Event> events;
  const double d = f.duration_s;
  int replica = 0;
  for (int i = 0; i < f.evictions; ++i) {
    events.push_back(
        {d * (0.08 + 0.72 * i / std::max(1, f.evictions)), Kind::kEviction, replica++ % replicas});
  }
  for (int i = 0; i < f.sigkills; ++i) {
    events.push_back({d * (0.5 + 0.1 * i), Kind::kSigkill, replica++ % replicas});
  }
  if (f.redis_failover) events.push_back({d * 0.3, Kind::kRedisFailover});
  if (f.pg_restart) events.push_back({d * 0.65, Kind::kPostgresRestart});
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.planned_s < b.planned_s; });
  return events;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double Round(double x) { return static_cast<double>(static_cast<int64_t>(x * 100 + 0.5)) / 100; }

std::string SelfDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : exe.parent_path().string();
}

int Run(const Flags& f) {
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  const std::string binary = f.binary.empty() ? SelfDir() + "/bulwark" : f.binary;
  if (access(binary.c_str(), X_OK) != 0) {
    std::cerr << "bulwark-drill: no executable bulwark at " << binary << " (use --binary)\n";
    return 2;
  }
  std::cerr << "bulwark-drill: starting PostgreSQL, Redis " << (f.sentinel ? "Sentinel" : "Cluster")
            << ", 3 replicas, HAProxy...\n";
  TopologyOptions topology_options;
  topology_options.binary = binary;
  topology_options.sentinel = f.sentinel;
  Topology topology(topology_options);
  const std::string user = "drill", password = "drill-password-0123456789";
  topology.AddUser(user, password);
  std::cerr << "bulwark-drill: topology up in " << topology.dir()
            << "; HAProxy on 127.0.0.1:" << topology.haproxy_port() << "; load for " << f.duration_s
            << " s\n";

  const auto start = SteadyClock::now();
  Recorder recorder(start);
  LoadOptions load_options;
  load_options.users = f.users;
  load_options.verifies_per_session = f.verifies;
  load_options.rate_per_user = f.rate;
  load_options.username = user;
  load_options.password = password;
  load_options.haproxy_port = topology.haproxy_port();
  load_options.replica_ports = topology.replica_ports();
  load_options.issuer = topology.issuer();
  Load load(load_options, recorder);
  load.Start();

  std::vector<Event> events = Plan(f, topology.replicas());
  const auto deadline = start + std::chrono::seconds(f.duration_s);
  for (Event& e : events) {
    while (!g_interrupted && recorder.Now() < e.planned_s && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    if (g_interrupted || SteadyClock::now() >= deadline) break;
    e.start_s = recorder.Now();
    switch (e.kind) {
      case Kind::kEviction:
        e.sigkill_needed = topology.Evict(e.replica, std::chrono::seconds(f.grace_s));
        break;
      case Kind::kSigkill:
        topology.Kill(e.replica);
        break;
      case Kind::kRedisFailover:
        e.took_ms = topology.FailOverRedis().count();
        break;
      case Kind::kPostgresRestart:
        topology.RestartPostgres();
        break;
    }
    e.end_s = recorder.Now();
    std::cerr << "bulwark-drill: " << Round(e.start_s) << " s: " << KindName(e.kind)
              << (e.replica >= 0 ? " of replica " + std::to_string(e.replica) : "") << " ("
              << Round(e.end_s - e.start_s) << " s)\n";
  }
  while (!g_interrupted && SteadyClock::now() < deadline) std::this_thread::sleep_for(20ms);
  load.Stop();
  const double elapsed = recorder.Now();
  Recorder::Snapshot s = recorder.Take();

  // --- report -----------------------------------------------------------------
  json::object requests, latency, by_class;
  for (auto& [endpoint, outcomes] : s.requests) {
    json::object o;
    for (auto& [name, n] : outcomes) o[name] = n;
    requests[endpoint] = std::move(o);
    auto& lat = s.latencies_ms[endpoint];
    latency[endpoint] = {
        {"p50", Round(Percentile(lat, 0.5))},
        {"p99", Round(Percentile(lat, 0.99))},
        {"max", Round(lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end()))}};
  }
  // A failure is "around" an event when it falls between 1 s before it and
  // 2 s after it. Failures around a SIGTERM eviction count against the
  // SIGTERM part only when no other disruption (SIGKILL, failover, restart)
  // was under way around them too.
  auto around = [](const Event& e, double at) {
    return e.end_s > 0 && at >= e.start_s - 1 && at <= e.end_s + 2;
  };
  uint64_t sigterm_failures = 0;
  for (const Failure& fl : s.failures) {
    bool sigterm = false, other = false;
    for (Event& e : events) {
      if (!around(e, fl.at_s)) continue;
      ++e.failures_around;
      (e.kind == Kind::kEviction ? sigterm : other) = true;
    }
    if (sigterm && !other) ++sigterm_failures;
  }
  json::array evictions, failovers, failure_list;
  for (Event& e : events) {
    if (e.end_s == 0) continue;
    json::object o{{"kind", KindKey(e.kind)},
                   {"at_s", Round(e.start_s)},
                   {"done_s", Round(e.end_s)},
                   {"replica", e.replica},
                   {"failures_around", e.failures_around}};
    if (e.kind == Kind::kEviction) o["sigkill_after_grace"] = e.sigkill_needed;
    if (e.kind == Kind::kRedisFailover) o["failover_ms"] = e.took_ms;
    (e.kind == Kind::kRedisFailover || e.kind == Kind::kPostgresRestart ? failovers : evictions)
        .push_back(std::move(o));
  }
  for (const Failure& fl : s.failures) {
    ++by_class.emplace(OutcomeName(fl.outcome), 0).first->value().as_int64();
    if (failure_list.size() < 50) {
      failure_list.push_back({{"at_s", Round(fl.at_s)},
                              {"endpoint", fl.endpoint},
                              {"class", OutcomeName(fl.outcome)},
                              {"detail", fl.detail}});
    }
  }
  const double failure_rate =
      s.total == 0 ? 0 : static_cast<double>(s.failures.size()) / static_cast<double>(s.total);
  const bool passed = !g_interrupted && s.sessions_lost == 0 && failure_rate <= f.max_failure_rate;
  json::array pids, ports, lost;
  for (int p : topology.AllPids()) pids.push_back(p);
  for (int p : topology.AllPorts()) ports.push_back(p);
  for (auto& d : s.lost_details) lost.push_back(json::string(d));
  json::array client_details;
  for (auto& d : s.client_failure_details) client_details.push_back(json::string(d));
  json::object report{
      {"duration_s", Round(elapsed)},
      {"requests", {{"total", s.total}, {"by_endpoint", requests}}},
      {"failures",
       {{"total", s.failures.size()},
        {"rate", failure_rate},
        {"by_class", by_class},
        {"around_sigterm_evictions", sigterm_failures},
        {"first", failure_list}}},
      {"sessions_created", s.sessions_created},
      {"sessions_verified", s.sessions_verified},
      {"sessions_lost", s.sessions_lost},
      {"refresh_families_broken", s.families_broken},
      {"lost_details", lost},
      {"client_library_calls", s.client_calls},
      {"client_library_failures", s.client_failures},
      {"client_library_failure_details", client_details},
      {"latency_ms", latency},
      {"throughput_rps", Round(static_cast<double>(s.total) / std::max(elapsed, 0.001))},
      {"evictions", evictions},
      {"failovers", failovers},
      {"pids", pids},
      {"ports", ports},
      {"passed", passed}};
  if (f.json) {
    std::cout << json::serialize(report) << "\n";
  } else {
    std::printf("Bulwark eviction drill: %.1f s, %d virtual users + 1 libbulwark-client app\n",
                elapsed, f.users);
    std::printf("requests %llu (%.0f/s), failures %zu (rate %.5f; around SIGTERM evictions %llu)\n",
                static_cast<unsigned long long>(s.total), s.total / std::max(elapsed, 0.001),
                s.failures.size(), failure_rate, static_cast<unsigned long long>(sigterm_failures));
    for (auto& [cls, n] : by_class)
      std::printf("  failures %-30s %lld\n", std::string(cls).c_str(),
                  static_cast<long long>(n.as_int64()));
    std::printf("sessions created %llu, verified %llu, LOST %llu; refresh families broken %llu\n",
                static_cast<unsigned long long>(s.sessions_created),
                static_cast<unsigned long long>(s.sessions_verified),
                static_cast<unsigned long long>(s.sessions_lost),
                static_cast<unsigned long long>(s.families_broken));
    std::printf("libbulwark-client app: %llu calls, %llu failed\n",
                static_cast<unsigned long long>(s.client_calls),
                static_cast<unsigned long long>(s.client_failures));
    std::printf("%-10s %10s %10s %10s %10s\n", "endpoint", "requests", "p50 ms", "p99 ms",
                "max ms");
    for (auto& [key, l] : latency) {
      const std::string endpoint(key);
      uint64_t n = 0;
      for (auto& [_, c] : s.requests[endpoint]) n += c;
      std::printf("%-10s %10llu %10.2f %10.2f %10.2f\n", endpoint.c_str(),
                  static_cast<unsigned long long>(n), l.at("p50").as_double(),
                  l.at("p99").as_double(), l.at("max").as_double());
    }
    std::printf("timeline:\n");
    for (const Event& e : events) {
      if (e.end_s == 0) continue;
      std::printf("  %6.2f-%6.2f s  %s%s%s; failures around it: %d\n", e.start_s, e.end_s,
                  KindName(e.kind),
                  e.replica >= 0 ? (" of replica " + std::to_string(e.replica)).c_str() : "",
                  e.kind == Kind::kRedisFailover
                      ? (", failover " + std::to_string(e.took_ms) + " ms").c_str()
                      : (e.sigkill_needed ? ", SIGKILL needed" : ""),
                  e.failures_around);
    }
    for (const std::string& d : s.client_failure_details) {
      std::printf("  libbulwark-client failure: %s\n", d.c_str());
    }
    for (const std::string& d : s.lost_details) std::printf("  lost: %s\n", d.c_str());
    for (size_t i = 0; i < failure_list.size() && i < 10; ++i) {
      std::printf("  failure: %s\n", json::serialize(failure_list[i]).c_str());
    }
    std::printf("%s\n", passed ? "PASSED: no session lost, failure rate within the limit"
                               : "FAILED: see sessions lost / failure rate above");
  }
  if (g_interrupted) return 130;
  return passed ? 0 : 1;
}

}  // namespace
}  // namespace bulwark::drill

int main(int argc, char** argv) {
  bulwark::drill::Flags f;
  CLI::App app{
      "bulwark-drill: evicts Bulwark replicas under load on loopback and reports lost sessions "
      "and failed requests (docs/drill.md)"};
  app.add_option("--duration", f.duration_s, "Seconds of load")->check(CLI::Range(5, 3600));
  app.add_option("--users", f.users, "Virtual users (threads)")->check(CLI::Range(1, 256));
  app.add_option("--rate", f.rate, "Requests per second per virtual user (0: unpaced)")
      ->check(CLI::Range(0.0, 10000.0));
  app.add_option("--verifies", f.verifies, "Verifications per session")->check(CLI::Range(1, 1000));
  app.add_option("--evictions", f.evictions, "Rolling SIGTERM evictions")
      ->check(CLI::Range(0, 100));
  app.add_option("--sigkill", f.sigkills, "Unannounced SIGKILLs")->check(CLI::Range(0, 10));
  app.add_flag("!--no-redis-failover", f.redis_failover, "Do not kill a Redis primary");
  app.add_flag("--pg-restart", f.pg_restart, "Restart PostgreSQL mid-run");
  app.add_flag("--sentinel", f.sentinel,
               "Redis Sentinel (1 primary, 1 replica, 3 sentinels) instead of a Redis Cluster");
  app.add_option("--grace", f.grace_s, "Termination grace period before SIGKILL (s)")
      ->check(CLI::Range(1, 120));
  app.add_flag("--json", f.json, "Print the report as one JSON object");
  app.add_option("--max-failure-rate", f.max_failure_rate,
                 "Failed requests / requests above which the drill fails (default 0)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--binary", f.binary, "The bulwark executable (default: beside this one)");
  CLI11_PARSE(app, argc, argv);
  try {
    return bulwark::drill::Run(f);
  } catch (const std::exception& e) {
    std::cerr << "bulwark-drill: " << e.what() << "\n";
    return 2;
  }
}
