// Per-request metrics and the access log (one JSON line per request).
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "http/server.hpp"
#include "metrics/registry.hpp"

namespace bulwark {

class AccessObserver final : public http::RequestObserver {
 public:
  explicit AccessObserver(metrics::Registry& metrics);
  void OnRequest(const http::RequestRecord& record) override;

 private:
  struct Series {
    metrics::Counter* requests;
    metrics::Histogram* duration;
  };
  // The metrics of one (route, method, status), looked up in the registry once.
  Series& SeriesFor(const http::RequestRecord& record);
  // SeriesFor through a small per-thread memo of recent answers: no key to
  // build and no lock on the way for the routes a thread serves again and again.
  const Series& RecentSeriesFor(const http::RequestRecord& record);

  // Tells this observer's memo entries from those of an earlier one at the same address.
  const uint64_t id_;
  metrics::Registry& metrics_;
  std::shared_mutex mutex_;
  // Key: route '\n' method '\n' status. Bounded: routes and methods come from
  // the routing table (unknown paths share the route "unmatched").
  std::unordered_map<std::string, Series> series_;  // GUARDED_BY(mutex_)
};

}  // namespace bulwark
