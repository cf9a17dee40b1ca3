// Micro-benchmarks of the Prometheus registry and of the per-request observer
// (metrics + one access-log line) that runs after every HTTP response.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "app/request_observer.hpp"
#include "metrics/registry.hpp"

namespace {

using bulwark::metrics::Registry;

// The hot path as documented: look the counter up once, keep the reference.
void BM_CounterInc(benchmark::State& state) {
  static Registry registry;
  auto& counter = registry.GetCounter("bench_counter_total", "Bench counter.");
  for (auto _ : state) counter.Inc();
  benchmark::DoNotOptimize(counter.Value());
}
BENCHMARK(BM_CounterInc);
// Same counter from two threads (both cores): contention on one atomic<double>.
BENCHMARK(BM_CounterInc)->Threads(2);

// A lookup by name and labels on every call, then Inc (what a caller that does
// not keep the reference pays; three labels, as the HTTP request counter has).
void BM_GetCounterWithLabelsThenInc(benchmark::State& state) {
  static Registry registry;
  for (auto _ : state) {
    registry
        .GetCounter("bench_http_requests_total", "Bench.",
                    {{"route", "/v1/auth/verify"}, {"method", "GET"}, {"code", "200"}})
        .Inc();
  }
}
BENCHMARK(BM_GetCounterWithLabelsThenInc);

// AccessObserver::OnRequest, the work done on an I/O thread after every
// response: metric lookups + a JSON access-log line. stderr goes to /dev/null
// for the measurement (so it measures formatting and the sink, not a terminal).
void BM_AccessObserverOnRequest(benchmark::State& state) {
  static Registry registry;
  static bulwark::AccessObserver observer(registry);
  bulwark::http::RequestRecord record;
  record.method = "GET";
  record.route = "/v1/auth/verify";
  record.path = "/v1/auth/verify";
  record.status = 200;
  record.seconds = 0.00042;
  record.request_id = "2bb967fdf715897a";
  record.remote_address = "127.0.0.1";
  record.response_bytes = 100;
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (saved < 0 || null_fd < 0 || dup2(null_fd, STDERR_FILENO) < 0) {
    state.SkipWithError("cannot redirect stderr");
    return;
  }
  for (auto _ : state) observer.OnRequest(record);
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(null_fd);
}
BENCHMARK(BM_AccessObserverOnRequest);

}  // namespace
