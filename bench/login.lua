-- wrk script for bench/run: every request is a JSON login of the bench user.
-- BENCH_USERNAME / BENCH_PASSWORD come from the environment (bench/run sets them);
-- BENCH_DIR is where wrk_report.lua lives.
local dir = os.getenv("BENCH_DIR") or "bench"
dofile(dir .. "/wrk_report.lua")

local username = os.getenv("BENCH_USERNAME") or "bench"
local password = os.getenv("BENCH_PASSWORD") or "bench-password"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- Username and password are plain ASCII chosen by bench/run: no JSON escaping needed.
wrk.body = '{"username":"' .. username .. '","password":"' .. password .. '"}'
