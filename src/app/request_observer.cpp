#include "app/request_observer.hpp"

#include <string>

#include "log/logger.hpp"

namespace bulwark {

AccessObserver::AccessObserver(metrics::Registry& metrics) : metrics_(metrics) {}

void AccessObserver::OnRequest(const http::RequestRecord& r) {
  std::string route(r.route), method(r.method), code = std::to_string(r.status);
  metrics_
      .GetCounter("bulwark_http_requests_total", "HTTP requests by route, method and status.",
                  {{"route", route}, {"method", method}, {"code", code}})
      .Inc();
  metrics_
      .GetHistogram("bulwark_http_request_duration_seconds",
                    "Time from the request's first byte being parsed to the response written.",
                    {{"route", route}})
      .Observe(r.seconds);
  // Only the route pattern is logged, never the query string (it may hold a token).
  log::Info("request", {{"request_id", r.request_id},
                        {"method", r.method},
                        {"route", r.route},
                        {"status", int64_t{r.status}},
                        {"duration_ms", r.seconds * 1000.0},
                        {"remote", r.remote_address},
                        {"bytes", static_cast<int64_t>(r.response_bytes)}});
}

}  // namespace bulwark
