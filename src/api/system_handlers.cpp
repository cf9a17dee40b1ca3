// GET /health (readiness), GET /health/live (liveness), GET /metrics.
// All inline on the I/O thread: they read in-memory state only.
#include "api/handlers.hpp"
#include "api/json_support.hpp"

namespace bulwark::api {
namespace {

using http::Executor;
using http::HttpRequest;
using http::HttpResponse;
namespace json = boost::json;

HttpResponse Health(ApiContext& ctx) {
  HealthSnapshot s = ctx.health.Snapshot();
  json::object components;
  for (const auto& c : s.components) {
    json::object o{{"status", c.healthy ? "up" : "down"},
                   {"kind", c.kind},
                   {"required", c.required},
                   {"latency_ms", c.latency_ms},
                   {"checked_at", c.checked_at}};
    if (!c.error.empty()) o["error"] = c.error;
    components[c.name] = std::move(o);
  }
  components["system"] =
      json::object{{"status", s.draining ? "draining" : (s.started ? "up" : "starting")},
                   {"replica", s.replica_id},
                   {"uptime_seconds", s.uptime_seconds}};
  // "degraded": serving, with an optional component down (e.g. PostgreSQL
  // while Redis still verifies sessions); load balancers only see the code.
  json::object out{{"status", !s.ready ? "unhealthy" : (s.degraded ? "degraded" : "healthy")},
                   {"draining", s.draining},
                   {"components", std::move(components)}};
  return JsonResponse(s.ready ? 200 : 503, out);
}

}  // namespace

void RegisterSystemRoutes(http::Router& router, ApiContext& ctx) {
  router.Add("GET", "/health", Executor::kInline, [&ctx](HttpRequest&) { return Health(ctx); });
  // Liveness never depends on a store: an outage must not restart every pod.
  router.Add("GET", "/health/live", Executor::kInline,
             [](HttpRequest&) { return HttpResponse::Json(200, R"({"status":"alive"})"); });
  router.Add("GET", "/metrics", Executor::kInline, [&ctx](HttpRequest&) {
    HttpResponse r;
    r.status = 200;
    r.body = ctx.metrics.RenderPrometheus();
    r.SetHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return r;
  });
}

}  // namespace bulwark::api
