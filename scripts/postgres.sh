#!/usr/bin/env bash
# A private PostgreSQL server for the controller's tests, on 127.0.0.1 only, in a folder of its own:
#   scripts/postgres.sh start DIR   prints the connection URL (trust authentication, user postgres)
#   scripts/postgres.sh stop DIR
# Run as root; the server runs as the postgres user that Debian's package creates.
set -euo pipefail
action=$1
dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
case $action in
start)
    port=${BAGPIPE_POSTGRES_PORT:-55432}
    mkdir -p "$dir"
    chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        su postgres -c "'$bin/initdb' -D '$dir/data' --auth=trust --username=postgres -E UTF8" >"$dir/initdb.log" 2>&1
    fi
    su postgres -c "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=on\" start" >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -f "$dir/data/postmaster.pid" ] && su postgres -c "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null || true
    rm -rf "$dir"
    ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
