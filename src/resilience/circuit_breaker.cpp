#include "resilience/circuit_breaker.hpp"

namespace bulwark::resilience {

const char* BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kHalfOpen:
      return "half-open";
    case BreakerState::kOpen:
      return "open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(BreakerOptions options) : options_(options) {}

bool CircuitBreaker::Allow(TimePoint now) {
  std::lock_guard lock(mutex_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (now - opened_at_ < options_.open_duration) return false;
      state_ = BreakerState::kHalfOpen;
      probe_in_flight_ = true;
      return true;
    case BreakerState::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::RecordSuccess() {
  std::lock_guard lock(mutex_);
  consecutive_failures_ = 0;
  probe_in_flight_ = false;
  state_ = BreakerState::kClosed;
}

void CircuitBreaker::RecordFailure(TimePoint now) {
  std::lock_guard lock(mutex_);
  probe_in_flight_ = false;
  ++consecutive_failures_;
  if (state_ == BreakerState::kHalfOpen ||
      (state_ == BreakerState::kClosed && consecutive_failures_ >= options_.failure_threshold)) {
    state_ = BreakerState::kOpen;
    opened_at_ = now;
    times_opened_.fetch_add(1);
  } else if (state_ == BreakerState::kOpen) {
    opened_at_ = now;
  }
}

BreakerState CircuitBreaker::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

namespace {
constexpr const char* kRequestsHelp = "Calls to a dependency by outcome";
}

DependencyMetrics::DependencyMetrics(metrics::Registry& registry, const std::string& dependency)
    : ok_(registry.GetCounter("bulwark_dependency_requests_total", kRequestsHelp,
                              {{"dependency", dependency}, {"outcome", "ok"}})),
      error_(registry.GetCounter("bulwark_dependency_requests_total", kRequestsHelp,
                                 {{"dependency", dependency}, {"outcome", "error"}})),
      rejected_(registry.GetCounter("bulwark_dependency_requests_total", kRequestsHelp,
                                    {{"dependency", dependency}, {"outcome", "rejected"}})),
      latency_(registry.GetHistogram("bulwark_dependency_latency_seconds",
                                     "Latency of calls to a dependency",
                                     {{"dependency", dependency}})),
      breaker_state_(registry.GetGauge("bulwark_dependency_breaker_state",
                                       "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                                       {{"dependency", dependency}})) {}

void DependencyMetrics::ObserveOk(std::chrono::steady_clock::duration latency) {
  ok_.Inc();
  latency_.Observe(std::chrono::duration<double>(latency).count());
}

void DependencyMetrics::ObserveError(std::chrono::steady_clock::duration latency) {
  error_.Inc();
  latency_.Observe(std::chrono::duration<double>(latency).count());
}

void DependencyMetrics::ObserveRejected() { rejected_.Inc(); }

void DependencyMetrics::SetBreakerState(BreakerState state) {
  breaker_state_.Set(static_cast<double>(state));
}

}  // namespace bulwark::resilience
