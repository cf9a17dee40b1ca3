// CircuitBreaker: fail fast instead of queuing timeouts against a dependency
// that is down (closed -> open after N consecutive failures; open -> half-open
// after a cool-down, letting one probe through; the probe's outcome closes or
// re-opens it). DependencyMetrics: per-dependency Prometheus series.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "metrics/registry.hpp"

namespace bulwark::resilience {

enum class BreakerState { kClosed = 0, kHalfOpen = 1, kOpen = 2 };
const char* BreakerStateName(BreakerState state);

struct BreakerOptions {
  int failure_threshold = 5;                      // consecutive failures that open it
  std::chrono::milliseconds open_duration{2000};  // cool-down before one probe
};

// Thread-safe.
class CircuitBreaker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit CircuitBreaker(BreakerOptions options = {});

  // True when a call may go ahead. In half-open state exactly one caller at a
  // time gets true (the probe); the others get false until it reports.
  bool Allow(TimePoint now = std::chrono::steady_clock::now());
  // Report the outcome of an allowed call. Only dependency failures (timeouts,
  // refused or lost connections) count; "not found" and the like are successes.
  void RecordSuccess();
  void RecordFailure(TimePoint now = std::chrono::steady_clock::now());

  BreakerState state() const;
  // Total number of closed/half-open -> open transitions.
  uint64_t times_opened() const { return times_opened_.load(); }

 private:
  BreakerOptions options_;
  mutable std::mutex mutex_;
  BreakerState state_ = BreakerState::kClosed;
  int consecutive_failures_ = 0;
  bool probe_in_flight_ = false;
  TimePoint opened_at_{};
  std::atomic<uint64_t> times_opened_{0};
};

// Series for one dependency ("postgres", "redis"):
//   bulwark_dependency_requests_total{dependency,outcome="ok|error|rejected"}
//   bulwark_dependency_latency_seconds{dependency}
//   bulwark_dependency_breaker_state{dependency}  (0 closed, 1 half-open, 2 open)
// Thread-safe; references are looked up once.
class DependencyMetrics {
 public:
  DependencyMetrics(metrics::Registry& registry, const std::string& dependency);
  void ObserveOk(std::chrono::steady_clock::duration latency);
  void ObserveError(std::chrono::steady_clock::duration latency);
  void ObserveRejected();  // the breaker refused the call
  void SetBreakerState(BreakerState state);

 private:
  metrics::Counter& ok_;
  metrics::Counter& error_;
  metrics::Counter& rejected_;
  metrics::Histogram& latency_;
  metrics::Gauge& breaker_state_;
};

}  // namespace bulwark::resilience
