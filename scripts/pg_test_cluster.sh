#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite: initdb in a temporary folder, its own port, its own unix
# socket folder (no TCP listener), no fsync (the tests never need a database to survive a crash of the host).
#
#   scripts/pg_test_cluster.sh start DIR [PORT]   -> prints the admin URL (postgresql://yzt@/postgres?host=DIR...)
#   scripts/pg_test_cluster.sh stop DIR           -> stops it and removes DIR
#
# initdb refuses to run as root: as root the cluster runs as the 'postgres' user Debian's package creates.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?folder}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "no PostgreSQL server found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  port=${3:-$(( 20000 + RANDOM % 20000 ))}
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 755 "$dir"
  as_owner "$bindir/initdb" -D "$dir/data" -U yzt --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
    "-p $port -k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
     -c max_connections=400 -c shared_buffers=64MB" >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "postgresql://yzt@/postgres?host=$dir&port=$port"
  ;;
stop)
  if [ -d "$dir/data" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
