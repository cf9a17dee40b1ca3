#!/usr/bin/env bash
# ctest deploy.edge.caddy: deploy/edge/caddy/Caddyfile, imported unchanged
# (addresses from the environment), run by a real Caddy (forward_auth) in front
# of a real `bulwark serve` and of an application that Caddy itself serves on
# another port. Scenario and assertions: tests/deploy/edge_common.sh
# (run_edge_scenario).
# shellcheck source=tests/deploy/edge_common.sh
source "$(dirname "$0")/edge_common.sh"

require_tool caddy caddy

start_bulwark_with_users

# Caddy in the foreground (its own child, so the trap stops it), no admin
# endpoint, no HTTPS, nothing written outside $WORK; a port taken meanwhile
# means another try on new ports.
start_caddy() {
  local attempt
  for attempt in 1 2 3 4 5; do
    EDGE_PORT=$(free_port)
    APP_PORT=$(free_port)
    [ "$EDGE_PORT" != "$APP_PORT" ] || continue
    rm -rf "$WORK/caddy" "$WORK/app.log" && mkdir -p "$WORK/caddy/home"
    cat >"$WORK/caddy/Caddyfile" <<EOF
{
	admin off
	auto_https off
	storage file_system $WORK/caddy/storage
}

import $SOURCE_DIR/deploy/edge/caddy/Caddyfile

# The application: shows what it was told about the caller. No host in the
# address: the proxied requests keep the edge's Host, and Caddy picks a
# site's access log by host (a host-less site's log takes every request).
http://:$APP_PORT {
	bind 127.0.0.1
	log {
		output file $WORK/app.log
	}
	respond "app ok
user={header.X-Auth-User}
user_id={header.X-Auth-User-Id}
roles={header.X-Auth-Roles}
" 200
}
EOF
    env HOME="$WORK/caddy/home" XDG_CONFIG_HOME="$WORK/caddy/home/config" \
      XDG_DATA_HOME="$WORK/caddy/home/data" EDGE_LISTEN="127.0.0.1:$EDGE_PORT" \
      BULWARK_ADDR="$BULWARK_ADDR" APP_ADDR="127.0.0.1:$APP_PORT" \
      caddy run --config "$WORK/caddy/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
    CADDY_PID=$!
    PIDS+=("$CADDY_PID")
    if wait_started "$CADDY_PID" caddy "$WORK/caddy.log"; then
      log "caddy pid $CADDY_PID: edge 127.0.0.1:$EDGE_PORT, application 127.0.0.1:$APP_PORT"
      return 0
    fi
    log "caddy: port $EDGE_PORT or $APP_PORT was taken (attempt $attempt)"
  done
  die "caddy did not start"
}
start_caddy

run_edge_scenario "http://127.0.0.1:$EDGE_PORT" caddy
finish
