#include "service/health_monitor.hpp"

#include <chrono>

namespace bulwark {

HealthMonitor::HealthMonitor(std::vector<Probe> probes, const Clock& clock, std::string replica_id)
    : probes_(std::move(probes)),
      clock_(clock),
      replica_id_(std::move(replica_id)),
      started_at_(clock.NowUnix()) {
  // Unknown until the first Refresh(): report unhealthy rather than guess.
  for (const auto& p : probes_) {
    components_.push_back(
        {p.name, p.kind, false, p.required, p.probe != nullptr, 0, "not checked yet", 0});
  }
}

void HealthMonitor::Refresh() {
  std::vector<ComponentHealth> fresh;
  fresh.reserve(probes_.size());
  for (const auto& p : probes_) {
    ComponentHealth c{p.name, p.kind,          true, p.required, p.probe != nullptr, 0,
                      "",     clock_.NowUnix()};
    if (p.probe) {
      auto begin = std::chrono::steady_clock::now();
      Status st = p.probe->Ping();
      c.latency_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
              .count();
      if (!st.ok()) {
        c.healthy = false;
        c.error = st.error().message();
      }
    }
    fresh.push_back(std::move(c));
  }
  std::lock_guard lock(mutex_);
  components_ = std::move(fresh);
}

HealthSnapshot HealthMonitor::Snapshot() const {
  HealthSnapshot s;
  s.started = started_.load();
  s.draining = draining_.load();
  s.replica_id = replica_id_;
  s.uptime_seconds = clock_.NowUnix() - started_at_;
  {
    std::lock_guard lock(mutex_);
    s.components = components_;
  }
  // Ready when every required component is up and, if anything is probed at
  // all, at least one probed component is (optional parts may fail alone).
  bool components_ok = true;
  bool any_probed = false;
  bool any_probed_up = false;
  for (const auto& c : s.components) {
    components_ok = components_ok && (c.healthy || !c.required);
    any_probed = any_probed || c.probed;
    any_probed_up = any_probed_up || (c.probed && c.healthy);
    s.degraded = s.degraded || !c.healthy;
  }
  s.ready = s.started && !s.draining && components_ok && (!any_probed || any_probed_up);
  return s;
}

}  // namespace bulwark
