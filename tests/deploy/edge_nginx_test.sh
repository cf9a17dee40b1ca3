#!/usr/bin/env bash
# ctest deploy.edge.nginx: deploy/edge/nginx/bulwark-auth.conf.template, with
# only its three address placeholders filled in, run by a real nginx
# (auth_request) in front of a real `bulwark serve` and of an application that
# nginx itself serves on another port. Scenario and assertions:
# tests/deploy/edge_common.sh (run_edge_scenario).
# shellcheck source=tests/deploy/edge_common.sh
source "$(dirname "$0")/edge_common.sh"

require_tool nginx nginx
nginx -V 2>&1 | grep -q -- --with-http_auth_request_module ||
  die "this nginx lacks the auth_request module (Debian's nginx package has it)"

start_bulwark_with_users

# Renders the template and starts nginx in the foreground (its own child, so
# the trap stops it); a port taken meanwhile means another try on new ports.
start_nginx() {
  local attempt
  for attempt in 1 2 3 4 5; do
    EDGE_PORT=$(free_port)
    APP_PORT=$(free_port)
    [ "$EDGE_PORT" != "$APP_PORT" ] || continue
    rm -rf "$WORK/nginx" && mkdir -p "$WORK/nginx"
    sed -e "s|\${EDGE_LISTEN}|127.0.0.1:$EDGE_PORT|g" -e "s|\${BULWARK_ADDR}|$BULWARK_ADDR|g" \
      -e "s|\${APP_ADDR}|127.0.0.1:$APP_PORT|g" \
      "$SOURCE_DIR/deploy/edge/nginx/bulwark-auth.conf.template" >"$WORK/nginx/bulwark-auth.conf"
    # shellcheck disable=SC2016  # a literal ${
    if grep -v '^[[:space:]]*#' "$WORK/nginx/bulwark-auth.conf" | grep -F '${'; then
      die "a placeholder the test does not know is left in the template"
    fi
    cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx-error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;

    include $WORK/nginx/bulwark-auth.conf;

    # The application: shows what it was told about the caller.
    server {
        listen 127.0.0.1:$APP_PORT;
        access_log $WORK/app.log;
        default_type text/plain;
        location / {
            return 200 "app ok\nuser=\$http_x_auth_user\nuser_id=\$http_x_auth_user_id\nroles=\$http_x_auth_roles\n";
        }
    }
}
EOF
    nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx-error.log" \
      >"$WORK/nginx-stdout.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    if wait_started "$NGINX_PID" nginx "$WORK/nginx-error.log"; then
      log "nginx pid $NGINX_PID: edge 127.0.0.1:$EDGE_PORT, application 127.0.0.1:$APP_PORT"
      return 0
    fi
    log "nginx: port $EDGE_PORT or $APP_PORT was taken (attempt $attempt)"
  done
  die "nginx did not start"
}
start_nginx

run_edge_scenario "http://127.0.0.1:$EDGE_PORT" nginx
finish
