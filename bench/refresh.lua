-- wrk script for bench/run: refresh-token rotation, POST /v1/auth/refresh.
--
-- Every refresh spends the token it presents and returns its successor (a
-- rotated token presented again outside the grace window revokes its whole
-- family), so each wrk thread keeps a pool of live tokens: request() pops one,
-- response() parses the new refresh_token out of the JSON body and pushes it
-- back. bench/run logs in N times beforehand and writes one refresh token per
-- line to BENCH_REFRESH_TOKENS; with BENCH_WRK_THREADS = T threads, thread k
-- takes lines k, k+T, k+2T, ... N = connections + threads: every connection
-- always has a token, plus one spare per thread because wrk calls request() once
-- on the first thread's Lua state before the run (script_verify_request, to
-- check the request and count pipelined ones) and never sends that request.
--
-- Counters (summed by wrk_report.lua's done()): "rotated" (200 with a new token),
-- "failed" (non-200: its token is gone), "no_token" (200 without a parsable
-- refresh_token), "starved" (request() found the pool empty, after a failure or
-- a socket error lost a token; it sends a token that cannot exist, which the
-- server answers with 400). A valid run has failed = no_token = starved = 0.
local dir = os.getenv("BENCH_DIR") or "bench"
dofile(dir .. "/wrk_report.lua")

bench_counters = {"initial", "rotated", "failed", "no_token", "starved"}
initial = 0
rotated = 0
failed = 0
no_token = 0
starved = 0

local pool = {}
local next_tid = 0

function setup(thread)
  bench_setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
end

function init(args)
  local path = os.getenv("BENCH_REFRESH_TOKENS")
  local nthreads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1") or 1
  local f = assert(io.open(path, "r"), "BENCH_REFRESH_TOKENS: cannot open " .. tostring(path))
  local i = 0
  for line in f:lines() do
    if line ~= "" then
      if i % nthreads == (tid - 1) then table.insert(pool, line) end
      i = i + 1
    end
  end
  f:close()
  initial = #pool
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  local token = table.remove(pool)
  if token == nil then
    starved = starved + 1
    token = "starved.0"
  end
  -- Tokens are <family>.<secret> in base64url/hex: no JSON escaping needed.
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
    return
  end
  local token = body and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token == nil then
    no_token = no_token + 1
    return
  end
  rotated = rotated + 1
  table.insert(pool, token)
end
