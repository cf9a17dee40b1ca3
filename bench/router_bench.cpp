// Micro-benchmarks of Router::Find over Bulwark's real route table (the
// patterns registered by src/api/*_handlers.cpp, in the same order; the
// handlers here are dummies since only matching is measured).
#include <benchmark/benchmark.h>

#include <string>

#include "http/router.hpp"

namespace {

using bulwark::http::Executor;
using bulwark::http::HttpRequest;
using bulwark::http::HttpResponse;
using bulwark::http::RouteMatch;
using bulwark::http::Router;

// Keep in step with src/api/system_handlers.cpp, auth_handlers.cpp, admin_handlers.cpp.
const Router& BulwarkRoutes() {
  static const Router router = [] {
    Router r;
    auto add = [&r](const char* method, const char* pattern) {
      r.Add(method, pattern, Executor::kStore, [](HttpRequest&) { return HttpResponse{}; });
    };
    add("GET", "/health");
    add("GET", "/health/live");
    add("GET", "/metrics");
    add("POST", "/v1/auth/login");
    add("POST", "/v1/auth/logout");
    add("GET", "/v1/auth/verify");
    add("GET", "/v1/sessions/me");
    add("DELETE", "/v1/sessions/me");
    add("GET", "/v1/admin/users");
    add("POST", "/v1/admin/users");
    add("GET", "/v1/admin/users/{id}");
    add("PATCH", "/v1/admin/users/{id}");
    add("DELETE", "/v1/admin/users/{id}");
    add("GET", "/v1/admin/users/{id}/sessions");
    add("DELETE", "/v1/admin/users/{id}/sessions");
    add("POST", "/v1/admin/users/{id}/roles");
    add("DELETE", "/v1/admin/users/{id}/roles/{role}");
    add("GET", "/v1/admin/roles");
    add("POST", "/v1/admin/roles");
    add("DELETE", "/v1/admin/roles/{name}");
    add("GET", "/v1/admin/config");
    add("GET", "/v1/admin/config/{key}");
    add("PUT", "/v1/admin/config/{key}");
    add("DELETE", "/v1/admin/config/{key}");
    return r;
  }();
  return router;
}

void FindBench(benchmark::State& state, const char* method, const char* path, int expected) {
  const Router& router = BulwarkRoutes();
  HttpRequest request;
  request.method = method;
  request.path = path;
  for (auto _ : state) {
    RouteMatch match = router.Find(request);
    benchmark::DoNotOptimize(match);
    if (match.status != expected) {
      state.SkipWithError("unexpected match status");
      break;
    }
  }
}

// The forward-auth hot path.
void BM_RouterFindVerify(benchmark::State& state) {
  FindBench(state, "GET", "/v1/auth/verify", 200);
}
BENCHMARK(BM_RouterFindVerify);

// Late in the table, two parameters (percent-decoded into path_params).
void BM_RouterFindAdminRevokeRole(benchmark::State& state) {
  FindBench(state, "DELETE", "/v1/admin/users/69ef4afb-334f-4531-9c96-b33540e06905/roles/support",
            200);
}
BENCHMARK(BM_RouterFindAdminRevokeRole);

// A path no route matches: the whole table is scanned.
void BM_RouterFindNotFound(benchmark::State& state) {
  FindBench(state, "GET", "/no/such/path", 404);
}
BENCHMARK(BM_RouterFindNotFound);

// Path exists for other methods: 405 with the Allow list.
void BM_RouterFindMethodNotAllowed(benchmark::State& state) {
  FindBench(state, "PUT", "/v1/auth/verify", 405);
}
BENCHMARK(BM_RouterFindMethodNotAllowed);

}  // namespace
