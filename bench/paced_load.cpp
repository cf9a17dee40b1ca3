// paced_load: an open-loop HTTP/1.1 load generator for bench/run's p99-at-a-given-load rows.
//
// wrk keeps every connection closed-loop: the next request leaves when the previous answer
// arrives, so at saturation its latency is the queue its connections make (Little's law:
// mean = connections / throughput), whatever the server. This one offers a fixed rate
// instead: request i is scheduled at start + i / rate, released at the first 0.25 ms tick at or
// after that time to an idle one of C keep-alive connections (or queued until one is idle),
// and its latency is measured from its scheduled time, not from when it actually left. A
// server that stalls is charged for every request it held back (no coordinated omission: the
// wrk2 method); so is this process when it lags, which is why it batches its wake-ups.
//
// Output: wrk's "Requests/sec:" line and the BENCH_JSON line of bench/wrk_report.lua, so that
// bench/run and bench/report.py read it as they read wrk. Only requests scheduled after the
// warm-up count. Counters: "late_sends" (sent >= 1 ms after their scheduled time: every
// connection was still waiting for an earlier answer, or this process lagged) and
// "offered_rate" (the rate asked for, per second).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string path = "/";
  std::vector<std::string> headers;
  double rate = 0;
  int connections = 50;
  int duration_s = 10;
  int warmup_s = 1;
  int timeout_s = 10;
  std::string timeline_path;  // empty: none
};

// The worst latency and the count of each 10 ms of the schedule (--timeline): shows whether a
// tail comes from a few stalls, and how often they recur.
constexpr auto kTimelineBucket = std::chrono::milliseconds(10);
struct TimelineBucket {
  std::uint32_t count = 0;
  std::uint32_t max_us = 0;
};

struct Tally {
  std::vector<TimelineBucket> timeline;
  std::vector<std::uint32_t> latencies_us;
  std::uint64_t bytes = 0;
  std::uint64_t non2xx = 0;
  std::uint64_t connect_errors = 0;
  std::uint64_t read_errors = 0;
  std::uint64_t write_errors = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t late_sends = 0;
};

struct Schedule {
  Clock::time_point start;
  Clock::time_point measure_from;  // requests scheduled earlier are warm-up
  Clock::time_point end;           // no request is scheduled at or after this
};

std::string request_text(const Options& options) {
  std::string text = "GET " + options.path + " HTTP/1.1\r\nHost: " + options.host + ":" +
                     std::to_string(options.port) + "\r\n";
  for (const auto& header : options.headers) text += header + "\r\n";
  return text + "\r\n";
}

bool is_timeout(const boost::system::error_code& ec) { return ec == beast::error::timeout; }

// Requests are scheduled at start + i / rate and released in batches, one batch per tick: a
// timer per request made this process wake (and, in a VM, halt and resume its vCPU) twice per
// request, which cost it most of a core at 35k req/s and showed up as latency.
constexpr auto kTick = std::chrono::microseconds(250);

// The requests scheduled so far and not yet taken by a connection, and the connections idle.
class Dispatcher {
 public:
  Dispatcher(const Options& options, const Schedule& schedule)
      : options_(options), schedule_(schedule) {}

  // One per tick: every request whose scheduled time has come joins the backlog.
  asio::awaitable<void> run_ticker() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (auto tick = schedule_.start;; tick += kTick) {
      timer.expires_at(tick);
      co_await timer.async_wait(asio::use_awaitable);
      const auto now = std::min(Clock::now(), schedule_.end);
      const auto since_start = std::chrono::duration<double>(now - schedule_.start).count();
      const auto due_by_now =
          static_cast<std::uint64_t>(std::floor(since_start * options_.rate)) + 1;
      for (; scheduled_ < due_by_now; ++scheduled_) {
        backlog_.push_back(schedule_.start +
                           std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(scheduled_ / options_.rate)));
      }
      const bool last = now >= schedule_.end;
      if (last) finished_ = true;
      wake(last ? idle_.size() : backlog_.size());
      if (last) co_return;
    }
  }

  // The scheduled time of the next request to send, or nothing once the schedule has ended
  // and the backlog is empty.
  asio::awaitable<std::optional<Clock::time_point>> next(asio::steady_timer& wake_signal) {
    while (backlog_.empty()) {
      if (finished_) co_return std::nullopt;
      wake_signal.expires_at(Clock::time_point::max());
      idle_.push_back(&wake_signal);
      boost::system::error_code ignored;
      co_await wake_signal.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    const auto due = backlog_.front();
    backlog_.pop_front();
    co_return due;
  }

 private:
  void wake(std::size_t count) {
    for (; count > 0 && !idle_.empty(); --count) {
      idle_.back()->cancel();
      idle_.pop_back();
    }
  }

  const Options& options_;
  const Schedule& schedule_;
  std::uint64_t scheduled_ = 0;
  bool finished_ = false;
  std::deque<Clock::time_point> backlog_;
  std::vector<asio::steady_timer*> idle_;
};

asio::awaitable<void> run_connection(const Options& options, const Schedule& schedule,
                                     Dispatcher& dispatcher, const std::string& request,
                                     Tally& tally) {
  const auto executor = co_await asio::this_coro::executor;
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(options.host), options.port);
  beast::tcp_stream stream(executor);
  asio::steady_timer wake_signal(executor);
  beast::flat_buffer buffer;
  bool connected = false;
  boost::system::error_code ec;
  // Counts a failed step of a measured request and drops the connection (the next request
  // reconnects).
  const auto drop = [&](std::uint64_t& failures, bool measured) {
    if (measured) ++failures;
    stream.close();
    connected = false;
  };
  while (const auto due = co_await dispatcher.next(wake_signal)) {
    const bool measured = *due >= schedule.measure_from;
    if (measured && Clock::now() - *due >= std::chrono::milliseconds(1)) ++tally.late_sends;
    if (!connected) {
      stream.expires_after(std::chrono::seconds(options.timeout_s));
      co_await stream.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        drop(tally.connect_errors, measured);
        continue;
      }
      stream.socket().set_option(asio::ip::tcp::no_delay(true));
      connected = true;
      buffer.clear();
    }
    stream.expires_after(std::chrono::seconds(options.timeout_s));
    co_await asio::async_write(stream, asio::buffer(request),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      drop(is_timeout(ec) ? tally.timeouts : tally.write_errors, measured);
      continue;
    }
    http::response<http::string_body> response;
    const auto bytes = co_await http::async_read(stream, buffer, response,
                                                 asio::redirect_error(asio::use_awaitable, ec));
    const auto answered = Clock::now();
    if (ec) {
      drop(is_timeout(ec) ? tally.timeouts : tally.read_errors, measured);
      continue;
    }
    if (measured) {
      const auto latency =
          std::chrono::duration_cast<std::chrono::microseconds>(answered - *due).count();
      const auto latency_us =
          static_cast<std::uint32_t>(std::clamp<std::int64_t>(latency, 0, UINT32_MAX));
      tally.latencies_us.push_back(latency_us);
      const auto bucket =
          static_cast<std::size_t>((*due - schedule.measure_from) / kTimelineBucket);
      if (bucket < tally.timeline.size()) {
        ++tally.timeline[bucket].count;
        tally.timeline[bucket].max_us = std::max(tally.timeline[bucket].max_us, latency_us);
      }
      tally.bytes += bytes;
      if (response.result_int() / 100 != 2) ++tally.non2xx;
    }
    if (!response.keep_alive()) {
      stream.close();
      connected = false;
    }
  }
  if (connected) stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
}

std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank =
      static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

void report(const Options& options, const Schedule& schedule, Tally& tally) {
  auto& lat = tally.latencies_us;
  std::sort(lat.begin(), lat.end());
  double mean = 0;
  for (const auto v : lat) mean += v;
  mean = lat.empty() ? 0 : mean / static_cast<double>(lat.size());
  double variance = 0;
  for (const auto v : lat) variance += (v - mean) * (v - mean);
  const double stdev =
      lat.size() > 1 ? std::sqrt(variance / static_cast<double>(lat.size() - 1)) : 0;
  const auto measured_us =
      std::chrono::duration_cast<std::chrono::microseconds>(schedule.end - schedule.measure_from)
          .count();
  const double seconds = static_cast<double>(measured_us) / 1e6;
  std::printf(
      "paced_load: %.0f req/s offered over %d connections to %s:%u%s, %d s measured after %d s "
      "warm-up\n",
      options.rate, options.connections, options.host.c_str(), options.port, options.path.c_str(),
      options.duration_s, options.warmup_s);
  std::printf(
      "  latency from the scheduled send: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
      percentile(lat, 50) / 1e3, percentile(lat, 99) / 1e3, percentile(lat, 99.9) / 1e3,
      lat.empty() ? 0.0 : lat.back() / 1e3);
  std::printf("  %zu responses, non-2xx %llu, late sends %llu\n", lat.size(),
              static_cast<unsigned long long>(tally.non2xx),
              static_cast<unsigned long long>(tally.late_sends));
  std::printf("Requests/sec: %.2f\n",
              seconds > 0 ? static_cast<double>(lat.size()) / seconds : 0.0);
  std::printf(
      "BENCH_JSON {\"requests\":%zu,\"duration_us\":%lld,\"bytes\":%llu,"
      "\"errors\":{\"connect\":%llu,\"read\":%llu,\"write\":%llu,\"status\":%llu,\"timeout\":%llu},"
      "\"latency_us\":{\"min\":%u,\"mean\":%.1f,\"max\":%u,\"stdev\":%.1f,"
      "\"p50\":%u,\"p75\":%u,\"p90\":%u,\"p99\":%u,\"p999\":%u},"
      "\"counters\":{\"late_sends\":%llu,\"offered_rate\":%lld}}\n",
      lat.size(), static_cast<long long>(measured_us), static_cast<unsigned long long>(tally.bytes),
      static_cast<unsigned long long>(tally.connect_errors),
      static_cast<unsigned long long>(tally.read_errors),
      static_cast<unsigned long long>(tally.write_errors),
      static_cast<unsigned long long>(tally.non2xx),
      static_cast<unsigned long long>(tally.timeouts), lat.empty() ? 0u : lat.front(), mean,
      lat.empty() ? 0u : lat.back(), stdev, percentile(lat, 50), percentile(lat, 75),
      percentile(lat, 90), percentile(lat, 99), percentile(lat, 99.9),
      static_cast<unsigned long long>(tally.late_sends), std::llround(options.rate));
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{
      "paced_load: offers a fixed request rate over keep-alive connections (open loop) and reports "
      "the latency percentiles measured from each request's scheduled send time"};
  app.add_option("--host", options.host, "IPv4/IPv6 address to connect to")->capture_default_str();
  app.add_option("--port", options.port, "TCP port")->required()->check(CLI::Range(1, 65535));
  app.add_option("--path", options.path, "request target")->capture_default_str();
  app.add_option("-H,--header", options.headers,
                 "extra request header, \"Name: value\" (repeatable)");
  app.add_option("--rate", options.rate, "requests per second offered")
      ->required()
      ->check(CLI::Range(1.0, 1e7));
  app.add_option("-c,--connections", options.connections, "keep-alive connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("-d,--duration", options.duration_s, "measured seconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 600));
  app.add_option("--warmup", options.warmup_s, "seconds sent first and not measured")
      ->capture_default_str()
      ->check(CLI::Range(0, 60));
  app.add_option("--timeline", options.timeline_path,
                 "write 'ms_into_the_measured_part responses max_latency_us' per 10 ms of the "
                 "schedule to this file");
  app.add_option("--timeout", options.timeout_s,
                 "seconds before a connect, write or read counts as a timeout")
      ->capture_default_str()
      ->check(CLI::Range(1, 60));
  CLI11_PARSE(app, argc, argv);
  try {
    (void)asio::ip::make_address(options.host);
  } catch (const std::exception&) {
    std::fprintf(stderr, "paced_load: --host must be an IP address, got '%s'\n",
                 options.host.c_str());
    return 2;
  }

  asio::io_context io(1);
  Schedule schedule;
  // The first sends leave 100 ms from now, after every connection's coroutine has started.
  schedule.start = Clock::now() + std::chrono::milliseconds(100);
  schedule.measure_from = schedule.start + std::chrono::seconds(options.warmup_s);
  schedule.end = schedule.measure_from + std::chrono::seconds(options.duration_s);
  const auto request = request_text(options);
  Tally tally;
  tally.timeline.resize(
      static_cast<std::size_t>(std::chrono::seconds(options.duration_s) / kTimelineBucket));
  tally.latencies_us.reserve(static_cast<std::size_t>(options.rate * options.duration_s * 1.05) +
                             16);
  Dispatcher dispatcher(options, schedule);
  const auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  for (int i = 0; i < options.connections; ++i) {
    asio::co_spawn(io, run_connection(options, schedule, dispatcher, request, tally), rethrow);
  }
  asio::co_spawn(io, dispatcher.run_ticker(), rethrow);
  io.run();
  report(options, schedule, tally);
  if (!options.timeline_path.empty()) {
    std::FILE* out = std::fopen(options.timeline_path.c_str(), "w");
    if (out == nullptr) {
      std::fprintf(stderr, "paced_load: cannot write %s\n", options.timeline_path.c_str());
      return 1;
    }
    for (std::size_t i = 0; i < tally.timeline.size(); ++i) {
      std::fprintf(out, "%zu %u %u\n", i * kTimelineBucket.count(), tally.timeline[i].count,
                   tally.timeline[i].max_us);
    }
    std::fclose(out);
  }
  return 0;
}
