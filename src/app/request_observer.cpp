#include "app/request_observer.hpp"

#include <array>
#include <atomic>
#include <mutex>
#include <string>

#include "log/logger.hpp"

namespace bulwark {

namespace {

// Clients choose the method token: anything unusual shares one label value so
// that metric cardinality stays bounded.
std::string_view MethodLabel(std::string_view method) {
  for (std::string_view known : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "OTHER";
}

std::atomic<uint64_t> next_observer_id{1};

}  // namespace

AccessObserver::AccessObserver(metrics::Registry& metrics)
    : id_(next_observer_id.fetch_add(1, std::memory_order_relaxed)), metrics_(metrics) {}

AccessObserver::Series& AccessObserver::SeriesFor(const http::RequestRecord& r) {
  const std::string_view method_label = MethodLabel(r.method);
  std::string key;
  key.reserve(r.route.size() + method_label.size() + 6);
  key.append(r.route).append(1, '\n').append(method_label).append(1, '\n');
  key.append(std::to_string(r.status));
  {
    std::shared_lock lock(mutex_);
    if (auto it = series_.find(key); it != series_.end()) return it->second;
  }
  std::string route(r.route), method(method_label), code = std::to_string(r.status);
  Series series{&metrics_.GetCounter("bulwark_http_requests_total",
                                     "HTTP requests by route, method and status.",
                                     {{"route", route}, {"method", method}, {"code", code}}),
                &metrics_.GetHistogram(
                    "bulwark_http_request_duration_seconds",
                    "Time from the request's first byte being parsed to the response written.",
                    {{"route", route}})};
  std::unique_lock lock(mutex_);
  return series_.try_emplace(std::move(key), series).first->second;
}

const AccessObserver::Series& AccessObserver::RecentSeriesFor(const http::RequestRecord& r) {
  struct Recent {
    uint64_t observer = 0;
    int status = 0;
    std::string_view method;  // one of MethodLabel's literals
    std::string route;
    Series series{};
  };
  constexpr std::size_t kRecent = 8;
  thread_local std::array<Recent, kRecent> recent;
  thread_local std::size_t next_slot = 0;
  const std::string_view method = MethodLabel(r.method);
  for (const Recent& entry : recent) {
    if (entry.observer == id_ && entry.status == r.status && entry.method.data() == method.data() &&
        entry.route == r.route) {
      return entry.series;
    }
  }
  Recent& slot = recent[next_slot];
  next_slot = (next_slot + 1) % kRecent;
  slot.series = SeriesFor(r);
  slot.observer = id_;
  slot.status = r.status;
  slot.method = method;
  slot.route.assign(r.route);
  return slot.series;
}

void AccessObserver::OnRequest(const http::RequestRecord& r) {
  const Series& series = RecentSeriesFor(r);
  series.requests->Inc();
  series.duration->Observe(r.seconds);
  // Only the route pattern is logged, never the query string (it may hold a token).
  log::WriteBatched(log::Level::kInfo, "request",
                    {{"request_id", r.request_id},
                     {"method", r.method},
                     {"route", r.route},
                     {"status", int64_t{r.status}},
                     {"duration_ms", r.seconds * 1000.0},
                     {"remote", r.remote_address},
                     {"bytes", static_cast<int64_t>(r.response_bytes)}});
}

}  // namespace bulwark
