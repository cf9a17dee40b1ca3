-- Shared by every wrk run of bench/run: at the end, print one machine-readable
-- line (after wrk's own text report) with the exact counts and percentiles.
-- Latencies are in microseconds, duration in microseconds.
--
-- Scripts that check responses (bench/oauth.lua, bench/refresh.lua) keep
-- per-thread counters in globals of each thread's Lua state and list their
-- names in bench_counters; done() sums them over the threads (thread:get) into
-- "counters". setup() is defined here for that; a script that needs its own
-- setup() must call bench_setup(thread) from it.
bench_threads = {}
bench_counters = bench_counters or {}

function bench_setup(thread)
  table.insert(bench_threads, thread)
end

function setup(thread)
  bench_setup(thread)
end

local function counters_json()
  local parts = {}
  for _, name in ipairs(bench_counters) do
    local total = 0
    for _, t in ipairs(bench_threads) do
      total = total + (tonumber(t:get(name)) or 0)
    end
    table.insert(parts, string.format('"%s":%d', name, total))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},"counters":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), counters_json()))
end
