-- wrk script for bench/run: POSTs one form-encoded body (BENCH_FORM_BODY) to
-- the URL given to wrk, e.g. `grant_type=client_credentials` to /oauth2/token
-- or `token=<jwt>` to /oauth2/introspect; bench/run adds the client's HTTP
-- Basic credentials with -H. Every response is checked: a 200 whose body does
-- not match the Lua pattern BENCH_EXPECT (e.g. an introspection answering
-- {"active":false}) is counted in "unexpected", so a cheap wrong answer cannot
-- pass for throughput. wrk itself counts non-2xx.
local dir = os.getenv("BENCH_DIR") or "bench"
dofile(dir .. "/wrk_report.lua")

bench_counters = {"checked", "unexpected"}
checked = 0
unexpected = 0

local expect = os.getenv("BENCH_EXPECT") or ""

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = os.getenv("BENCH_FORM_BODY") or ""

function response(status, headers, body)
  if status == 200 then
    checked = checked + 1
    if expect ~= "" and not (body and body:find(expect)) then
      unexpected = unexpected + 1
    end
  end
end
