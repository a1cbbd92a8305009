#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests: initdb in a temporary folder, a free port, run as the
# `postgres` user (initdb refuses root). Usage:
#   eval "$(bash scripts/pg-cluster.sh start)"   # exports HV_TEST_DATABASE_URL and HV_PG_DIR
#   bash scripts/pg-cluster.sh stop "$HV_PG_DIR"
# HV_PG_FSYNC=on starts it durable (fsync on, as in production) for benchmarks; tests run without fsync.
set -euo pipefail

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] || { echo "pg-cluster: PostgreSQL is not installed (Debian: apt-get install -y postgresql)" >&2; exit 1; }
  echo "$d"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    bin=$(bindir)
    dir=$(mktemp -d /tmp/hv-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${HV_PG_FSYNC:-off}" start >/dev/null
    echo "export HV_PG_DIR=$dir"
    echo "export HV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    dir=${2:?usage: pg-cluster.sh stop DIR}
    bin=$(bindir)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-cluster.sh start | stop DIR" >&2
    exit 2
    ;;
esac
