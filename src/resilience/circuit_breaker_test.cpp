#include "resilience/circuit_breaker.hpp"

#include <gtest/gtest.h>

namespace bulwark::resilience {
namespace {

using std::chrono::milliseconds;
using TimePoint = CircuitBreaker::TimePoint;

const TimePoint kT0 = TimePoint(std::chrono::seconds(1000));

CircuitBreaker Make() { return CircuitBreaker(BreakerOptions{3, milliseconds(500)}); }

TEST(CircuitBreakerTest, StaysClosedBelowTheThreshold) {
  CircuitBreaker b = Make();
  b.RecordFailure(kT0);
  b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_TRUE(b.Allow(kT0));
}

TEST(CircuitBreakerTest, ASuccessResetsTheFailureCount) {
  CircuitBreaker b = Make();
  b.RecordFailure(kT0);
  b.RecordFailure(kT0);
  b.RecordSuccess();
  b.RecordFailure(kT0);
  b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndRejects) {
  CircuitBreaker b = Make();
  for (int i = 0; i < 3; ++i) b.RecordFailure(kT0);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_EQ(b.times_opened(), 1u);
  EXPECT_FALSE(b.Allow(kT0 + milliseconds(499)));
}

TEST(CircuitBreakerTest, HalfOpenLetsExactlyOneProbeThrough) {
  CircuitBreaker b = Make();
  for (int i = 0; i < 3; ++i) b.RecordFailure(kT0);
  EXPECT_TRUE(b.Allow(kT0 + milliseconds(500)));
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(b.Allow(kT0 + milliseconds(501)));
}

TEST(CircuitBreakerTest, ASuccessfulProbeCloses) {
  CircuitBreaker b = Make();
  for (int i = 0; i < 3; ++i) b.RecordFailure(kT0);
  ASSERT_TRUE(b.Allow(kT0 + milliseconds(600)));
  b.RecordSuccess();
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_TRUE(b.Allow(kT0 + milliseconds(601)));
}

TEST(CircuitBreakerTest, AFailedProbeReopensForAnotherCoolDown) {
  CircuitBreaker b = Make();
  for (int i = 0; i < 3; ++i) b.RecordFailure(kT0);
  const TimePoint probe_at = kT0 + milliseconds(600);
  ASSERT_TRUE(b.Allow(probe_at));
  b.RecordFailure(probe_at);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_EQ(b.times_opened(), 2u);
  EXPECT_FALSE(b.Allow(probe_at + milliseconds(499)));
  EXPECT_TRUE(b.Allow(probe_at + milliseconds(500)));
}

TEST(DependencyMetricsTest, RendersPerDependencySeries) {
  metrics::Registry registry;
  DependencyMetrics m(registry, "redis");
  m.ObserveOk(milliseconds(2));
  m.ObserveError(milliseconds(3));
  m.ObserveRejected();
  m.SetBreakerState(BreakerState::kOpen);
  std::string text = registry.RenderPrometheus();
  EXPECT_NE(text.find(R"(bulwark_dependency_requests_total{dependency="redis",outcome="ok"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(bulwark_dependency_breaker_state{dependency="redis"} 2)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(bulwark_dependency_latency_seconds_count{dependency="redis"} 2)"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace bulwark::resilience
