# shellcheck shell=bash
# Shared by edge_nginx_test.sh and edge_caddy_test.sh (sourced, not run):
# a real `bulwark serve` on 127.0.0.1 with a temporary SQLite directory, a
# proxy in front of a tiny application that the proxy itself serves, and the
# assertions both proxies must pass. Loopback only; every wait is bounded;
# everything started here is stopped on exit.
set -euo pipefail

BULWARK=${1:?usage: $0 path/to/bulwark}
# shellcheck disable=SC2034  # used by the scripts that source this file
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-edge.XXXXXX")
PIDS=()
FAILURES=0
PASSWORD_ALICE='alice-edge-password'
PASSWORD_BOB='bob-edge-password'

log() { printf '%s\n' "$*" >&2; }
die() {
  log "FATAL: $*"
  exit 1
}

# True while $1 runs (a zombie child counts as gone).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

# SIGTERM, up to 10 s, then SIGKILL; reaps the child.
stop_pid() {
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "pid $pid ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

forget_pid() {  # a child already reaped: not to be signalled again
  local keep=() pid
  for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

cleanup() {
  local status=$? pid
  trap - EXIT
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ "$status" -ne 0 ] || [ "$FAILURES" -ne 0 ]; then
    for f in "$WORK"/*.log; do
      [ -f "$f" ] || continue
      log "---- $(basename "$f") (last 40 lines)"
      tail -n 40 "$f" >&2 || true
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port on 127.0.0.1 that nothing accepts on now. The caller's server must
# still check that its bind succeeded (another process may take it first).
free_port() {
  local port _
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

# Polls `$2...` (a command) every 0.05 s for up to $1 seconds.
wait_until() {
  local seconds=$1 _
  shift
  for _ in $(seq 1 $((seconds * 20))); do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}

# wait_started PID WHAT LOG: waits up to 10 s for edge_up && app_up (defined
# by the caller). 0: up; 1: the process died of a taken port (try other
# ports); dies on anything else.
wait_started() {
  local pid=$1 _
  for _ in $(seq 1 200); do
    if ! alive "$pid"; then
      forget_pid "$pid"
      wait "$pid" 2>/dev/null || true
      if grep -qi 'address already in use' "$3"; then return 1; fi
      die "$2 exited at start-up: $(tail -n 5 "$3")"
    fi
    if edge_up && app_up; then return 0; fi
    sleep 0.05
  done
  die "$2 did not answer within 10 s"
}

require_tool() {
  command -v "$1" >/dev/null 2>&1 ||
    die "$1 is not installed (scripts/install-deps.sh test installs it: package $2)"
}

# --- Bulwark ------------------------------------------------------------------

BULWARK_ENV=(BULWARK_DATA_DIR="$WORK/data" BULWARK_LOG_FORMAT=json
  BULWARK_ISSUER=http://bulwark.edge.test BULWARK_COOKIE_SECURE=false
  BULWARK_ARGON2_ITERATIONS=1 BULWARK_ARGON2_MEMORY_KIB=8192 BULWARK_HASH_PRIORITY=low
  BULWARK_DRAIN_DELAY=1.5 BULWARK_SHUTDOWN_TIMEOUT=3)

add_user() {  # name password [role]
  local args=(user add --username "$1" --password-stdin)
  [ -n "${3:-}" ] && args+=(--role "$3")
  printf '%s\n' "$2" | env "${BULWARK_ENV[@]}" "$BULWARK" "${args[@]}" >>"$WORK/cli.log" 2>&1 ||
    die "bulwark ${args[*]} failed"
}

bulwark_ready() { grep -q '"msg":"ready"' "$WORK/bulwark.log" 2>/dev/null; }

# Starts `bulwark serve` on 127.0.0.1, port chosen by the kernel; sets
# BULWARK_PID and BULWARK_ADDR.
start_bulwark() {
  # A simple command, so that $! is bulwark itself (env execs it), not a subshell.
  env "${BULWARK_ENV[@]}" BULWARK_LISTEN=127.0.0.1:0 "$BULWARK" serve >"$WORK/bulwark.log" 2>&1 &
  BULWARK_PID=$!
  PIDS+=("$BULWARK_PID")
  wait_until 60 bulwark_ready || die "bulwark did not report ready within 60 s"
  BULWARK_ADDR=$(grep -o '"listen":"127\.0\.0\.1:[0-9]*"' "$WORK/bulwark.log" | head -n1 |
    grep -o '127\.0\.0\.1:[0-9]*')
  [ -n "$BULWARK_ADDR" ] || die "no listen address in bulwark's ready line"
  log "bulwark pid $BULWARK_PID on $BULWARK_ADDR"
}

# --- HTTP and assertions ------------------------------------------------------

# request NAME curl-args...: writes $WORK/NAME.{body,headers}; sets STATUS.
request() {
  local name=$1
  shift
  STATUS=$(curl -sS --max-time 10 -o "$WORK/$name.body" -D "$WORK/$name.headers" \
    -w '%{http_code}' "$@" 2>"$WORK/$name.curl-error") || STATUS="curl-failed($(cat "$WORK/$name.curl-error"))"
}

pass() { log "ok   - $*"; }
fail() {
  log "FAIL - $*"
  FAILURES=$((FAILURES + 1))
}

expect_status() {  # what want
  if [ "$STATUS" = "$2" ]; then pass "$1: $STATUS"; else fail "$1: status $STATUS, want $2"; fi
}

expect_5xx() {  # what
  case "$STATUS" in
    5??) pass "$1: $STATUS" ;;
    *) fail "$1: status $STATUS, want 5xx" ;;
  esac
}

# expect_line what name line: the body of request `name` has exactly this line.
expect_line() {
  if grep -qxF -- "$3" "$WORK/$2.body"; then
    pass "$1: '$3'"
  else
    fail "$1: body lacks the line '$3'; body: $(head -c 400 "$WORK/$2.body" | tr '\n' '|')"
  fi
}

# expect_header what name header-line (case-insensitive name, exact value).
expect_header() {
  local header=${3%%:*} value=${3#*: }
  if tr -d '\r' <"$WORK/$2.headers" | grep -i "^$header:" | grep -qF ": $value"; then
    pass "$1: $3"
  else
    fail "$1: no '$3' header; headers: $(tr -d '\r' <"$WORK/$2.headers" | tr '\n' '|')"
  fi
}

json_field() {  # name field: a string field of the JSON body of request `name`
  grep -o "\"$2\":\"[^\"]*\"" "$WORK/$1.body" | head -n1 | sed 's/^"[^"]*":"//; s/"$//'
}

# The application logs one line per request it serves to $WORK/app.log; the
# scripts' own readiness probes ask for APP_PROBE_PATH and do not count.
APP_PROBE_PATH=/__edge_test_probe
app_hits() {
  if [ -f "$WORK/app.log" ]; then grep -v -c -F "$APP_PROBE_PATH" "$WORK/app.log" || true; else echo 0; fi
}
app_hits_at_least() { [ "$(app_hits)" -ge "$1" ]; }

# expect_app_hits what N: the application has served exactly N requests
# (waits up to 3 s for a log line that is late, then 0.3 s for one too many).
expect_app_hits() {
  wait_until 3 app_hits_at_least "$2" || true
  sleep 0.3
  local hits
  hits=$(app_hits)
  if [ "$hits" -eq "$2" ]; then
    pass "$1: the application served $hits requests"
  else
    fail "$1: the application served $hits requests, want $2"
  fi
}

# --- The scenario both proxies must pass ---------------------------------------

# EDGE (http://127.0.0.1:port of the proxy) must be up, in front of Bulwark
# (BULWARK_ADDR) and of the application, which answers 200 with the body
#   app ok
#   user=<X-Auth-User>
#   user_id=<X-Auth-User-Id>
#   roles=<X-Auth-Roles>
# and logs each request it serves to $WORK/app.log.
# alice (admin) and bob (no role), then Bulwark; and the probes the proxy
# scripts wait on while their proxy starts.
start_bulwark_with_users() {
  add_user alice "$PASSWORD_ALICE" admin
  add_user bob "$PASSWORD_BOB"
  start_bulwark
}
edge_up() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$EDGE_PORT/v1/auth/verify"; }
app_up() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$APP_PORT$APP_PROBE_PATH"; }

run_edge_scenario() {
  local edge=$1 proxy=$2

  # Logins go through the proxy too (the /v1/auth/ pass-through).
  request login_alice -X POST "$edge/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"alice\",\"password\":\"$PASSWORD_ALICE\"}"
  expect_status "login through $proxy" 200
  local alice_session alice_jwt alice_id
  alice_session=$(json_field login_alice session_token)
  alice_jwt=$(json_field login_alice access_token)
  alice_id=$(json_field login_alice id)
  if [ -z "$alice_session" ] || [ -z "$alice_jwt" ] || [ -z "$alice_id" ]; then
    die "login answered without session_token, access_token or user id: $(cat "$WORK/login_alice.body")"
  fi
  request login_bob -X POST "$edge/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"bob\",\"password\":\"$PASSWORD_BOB\"}"
  expect_status "login of a user without roles" 200
  local bob_session bob_id
  bob_session=$(json_field login_bob session_token)
  bob_id=$(json_field login_bob id)

  # Refused requests never reach the application.
  request no_token "$edge/orders/42"
  expect_status "no token" 401
  expect_header "no token" no_token "WWW-Authenticate: Bearer"
  request bad_token "$edge/orders/42" -H "Authorization: Bearer not-a-real-token-$RANDOM"
  expect_status "unknown session token" 401
  # One character of the signature changed (not the last: its low bits are padding).
  local pos=$((${#alice_jwt} - 10)) c
  c=${alice_jwt:pos:1}
  [ "$c" = A ] && c=B || c=A
  request bad_jwt "$edge/orders/42" -H "Authorization: Bearer ${alice_jwt:0:pos}$c${alice_jwt:pos+1}"
  expect_status "JWT with a broken signature" 401
  request forged "$edge/orders/42" -H 'X-Auth-User: alice' -H "X-Auth-User-Id: $alice_id" \
    -H 'X-Auth-Roles: admin'
  expect_status "forged identity headers without a token" 401
  expect_app_hits "after the refused requests" 0

  # A session token: the application answers, with the identity from Bulwark.
  request session "$edge/orders/42" -H "Authorization: Bearer $alice_session"
  expect_status "valid session token" 200
  expect_line "valid session token reaches the application" session "app ok"
  expect_line "X-Auth-User passed upstream" session "user=alice"
  expect_line "X-Auth-User-Id passed upstream" session "user_id=$alice_id"
  expect_line "X-Auth-Roles passed upstream" session "roles=admin"

  # The session cookie a browser would send.
  request cookie "$edge/orders/42" -H "Cookie: bulwark_session=$alice_session"
  expect_status "session cookie" 200
  expect_line "session cookie identity" cookie "user=alice"

  # A JWT access token.
  request jwt "$edge/orders/42" -H "Authorization: Bearer $alice_jwt"
  expect_status "JWT access token" 200
  expect_line "JWT user name" jwt "user=alice"
  expect_line "JWT identity" jwt "user_id=$alice_id"
  expect_line "JWT roles" jwt "roles=admin"

  # Forged headers with a valid token: Bulwark's values win, and a user with
  # no roles cannot claim some.
  request forged_alice "$edge/orders/42" -H "Authorization: Bearer $alice_session" \
    -H 'X-Auth-User: mallory' -H 'X-Auth-User-Id: 0' -H 'X-Auth-Roles: superuser'
  expect_status "valid token with forged headers" 200
  expect_line "forged X-Auth-User replaced" forged_alice "user=alice"
  expect_line "forged X-Auth-User-Id replaced" forged_alice "user_id=$alice_id"
  expect_line "forged X-Auth-Roles replaced" forged_alice "roles=admin"
  request forged_bob "$edge/orders/42" -H "Authorization: Bearer $bob_session" \
    -H 'X-Auth-User: alice' -H 'X-Auth-Roles: admin'
  expect_status "user without roles, forged headers" 200
  expect_line "forged X-Auth-User replaced (no roles)" forged_bob "user=bob"
  expect_line "user id of the user without roles" forged_bob "user_id=$bob_id"
  expect_line "forged X-Auth-Roles dropped (no roles)" forged_bob "roles="
  expect_app_hits "after the accepted requests" 5

  # Logout through the proxy: the session stops working at once.
  request logout -X POST "$edge/v1/auth/logout" -H "Authorization: Bearer $alice_session"
  expect_status "logout" 204
  request after_logout "$edge/orders/42" -H "Authorization: Bearer $alice_session"
  expect_status "session token after logout" 401
  request cookie_after_logout "$edge/orders/42" -H "Cookie: bulwark_session=$alice_session"
  expect_status "session cookie after logout" 401
  expect_app_hits "after logout" 5

  # SIGTERM: Bulwark keeps answering through its drain delay (1.5 s here)
  # while /health says 503, then exits; the proxy must then refuse (5xx),
  # never let a request through to the application.
  kill -TERM "$BULWARK_PID"
  request draining "$edge/orders/42" -H "Authorization: Bearer $bob_session"
  expect_status "during Bulwark's drain delay" 200
  request health_draining "http://$BULWARK_ADDR/health"
  expect_status "Bulwark /health while draining" 503
  local _
  for _ in $(seq 1 100); do
    alive "$BULWARK_PID" || break
    sleep 0.1
  done
  if alive "$BULWARK_PID"; then fail "bulwark still running 10 s after SIGTERM"; fi
  local status=0
  wait "$BULWARK_PID" || status=$?
  forget_pid "$BULWARK_PID"
  if [ "$status" -eq 0 ]; then pass "bulwark exited 0 after SIGTERM"; else
    fail "bulwark exited with status $status after SIGTERM"; fi
  request bulwark_down "$edge/orders/42" -H "Authorization: Bearer $bob_session"
  expect_5xx "Bulwark stopped, valid token"
  request bulwark_down_none "$edge/orders/42"
  expect_5xx "Bulwark stopped, no token"
  expect_app_hits "with Bulwark stopped" 6
}

finish() {
  if [ "$FAILURES" -ne 0 ]; then
    log "$FAILURES check(s) FAILED"
    exit 1
  fi
  log "all checks passed"
}
