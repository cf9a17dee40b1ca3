#!/usr/bin/env bash
# `make run`: start Bulwark on the embedded SQLite default with a demo
# administrator (username "admin", password $BULWARK_DEMO_ADMIN_PASSWORD,
# default "bulwark-demo"). Extra arguments go to `bulwark serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./build/bulwark
export BULWARK_DATA_DIR=${BULWARK_DATA_DIR:-./bulwark-data}
export BULWARK_LOG_FORMAT=${BULWARK_LOG_FORMAT:-text}
# Plain http on localhost: browsers would drop a Secure cookie, so the demo turns it off.
export BULWARK_COOKIE_SECURE=${BULWARK_COOKIE_SECURE:-false}
# A workstation shares its CPU with everything else: SCHED_IDLE hashing (the
# default, right for a container) could leave a login waiting behind a build.
export BULWARK_HASH_PRIORITY=${BULWARK_HASH_PRIORITY:-low}
password=${BULWARK_DEMO_ADMIN_PASSWORD:-bulwark-demo}

if ! "$bin" user list 2>/dev/null | grep -q '  admin  '; then
  printf '%s\n' "$password" | "$bin" user add --username admin --password-stdin --role admin >/dev/null
  echo "demo administrator created: admin / $password"
fi
echo "Bulwark listening on ${BULWARK_LISTEN:-127.0.0.1:8080} (Ctrl-C to stop)"
exec "$bin" serve "$@"
