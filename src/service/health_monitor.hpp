// Readiness state of this replica: component probes refreshed in the
// background, plus the lifecycle flags (ready, draining). /health reads a
// snapshot, so it never blocks an I/O thread and turns 503 the instant
// draining starts.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "storage/stores.hpp"

namespace bulwark {

struct ComponentHealth {
  std::string name;  // "database", "redis"
  std::string kind;  // "sqlite", "postgres", "redis", "embedded"
  bool healthy = false;
  bool required = true;
  bool probed = false;  // false: nothing to check (e.g. sessions kept in the database)
  double latency_ms = 0;
  std::string error;  // empty when healthy
  int64_t checked_at = 0;
};

struct HealthSnapshot {
  bool ready = false;     // started and not draining, all required components healthy
  bool started = false;   // listening
  bool draining = false;  // SIGTERM received
  bool degraded = false;  // some component is down (ready may still be true)
  std::vector<ComponentHealth> components;
  std::string replica_id;
  int64_t uptime_seconds = 0;
};

class HealthMonitor {
 public:
  struct Probe {
    std::string name;
    std::string kind;
    std::shared_ptr<HealthProbe> probe;  // nullptr: reported healthy with `kind` (e.g. embedded)
    bool required = true;
  };

  HealthMonitor(std::vector<Probe> probes, const Clock& clock, std::string replica_id);

  // Pings every component (blocking; call from a background thread).
  void Refresh();
  HealthSnapshot Snapshot() const;

  void MarkStarted() { started_.store(true); }
  void MarkDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

 private:
  std::vector<Probe> probes_;
  const Clock& clock_;
  std::string replica_id_;
  int64_t started_at_;
  std::atomic<bool> started_{false};
  std::atomic<bool> draining_{false};
  mutable std::mutex mutex_;
  std::vector<ComponentHealth> components_;  // GUARDED_BY(mutex_)
};

}  // namespace bulwark
