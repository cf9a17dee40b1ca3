#include "service/health_monitor.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "tests/support/memory_store.hpp"

namespace bulwark {
namespace {

using testing::MemoryStore;

class HealthMonitorTest : public ::testing::Test {
 protected:
  HealthSnapshot Check(std::vector<HealthMonitor::Probe> probes) {
    HealthMonitor monitor(std::move(probes), clock_, "r1");
    monitor.MarkStarted();
    monitor.Refresh();
    return monitor.Snapshot();
  }

  FakeClock clock_;
  std::shared_ptr<MemoryStore> db_ = std::make_shared<MemoryStore>();
  std::shared_ptr<MemoryStore> redis_ = std::make_shared<MemoryStore>();
};

TEST_F(HealthMonitorTest, EmbeddedModeNeedsTheDatabase) {
  std::vector<HealthMonitor::Probe> probes{{"database", "sqlite", db_, true},
                                           {"redis", "embedded", nullptr, true}};
  EXPECT_TRUE(Check(probes).ready);
  db_->unavailable = true;
  HealthSnapshot s = Check(probes);
  EXPECT_FALSE(s.ready);
  EXPECT_FALSE(s.components[0].healthy);
  EXPECT_TRUE(s.components[1].healthy);  // nothing to probe
}

TEST_F(HealthMonitorTest, WriteThroughStaysReadyAndDegradedWithOneSideDown) {
  std::vector<HealthMonitor::Probe> probes{{"database", "postgres", db_, false},
                                           {"redis", "redis", redis_, false}};
  HealthSnapshot all_up = Check(probes);
  EXPECT_TRUE(all_up.ready);
  EXPECT_FALSE(all_up.degraded);

  db_->unavailable = true;
  HealthSnapshot db_down = Check(probes);
  EXPECT_TRUE(db_down.ready);
  EXPECT_TRUE(db_down.degraded);
  EXPECT_FALSE(db_down.components[0].error.empty());

  db_->unavailable = false;
  redis_->unavailable = true;
  EXPECT_TRUE(Check(probes).ready);

  db_->unavailable = true;
  EXPECT_FALSE(Check(probes).ready);  // nothing left that can verify a session
}

TEST_F(HealthMonitorTest, RedisOnlySessionsNeedRedis) {
  std::vector<HealthMonitor::Probe> probes{{"database", "postgres", db_, false},
                                           {"redis", "redis", redis_, true}};
  db_->unavailable = true;
  EXPECT_TRUE(Check(probes).ready);
  db_->unavailable = false;
  redis_->unavailable = true;
  EXPECT_FALSE(Check(probes).ready);
}

TEST_F(HealthMonitorTest, DrainingIsNeverReady) {
  HealthMonitor monitor({{"database", "sqlite", db_, true}}, clock_, "r1");
  monitor.MarkStarted();
  monitor.Refresh();
  monitor.MarkDraining();
  EXPECT_FALSE(monitor.Snapshot().ready);
}

}  // namespace
}  // namespace bulwark
