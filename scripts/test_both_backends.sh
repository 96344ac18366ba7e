#!/usr/bin/env bash
# make test: the whole suite on SQLite, then again on a throwaway PostgreSQL cluster (started here, removed
# at the end even when a test or the cluster fails). Extra arguments go to pytest.
#   PYTHON=.venv/bin/python scripts/test_both_backends.sh [-x ...]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
status=0

t0=$(date +%s)
echo "== tests on SQLite"
env -u YZT_TEST_DATABASE "$PY" -m pytest -n 2 "$@" tests || status=$?
t1=$(date +%s)
echo "== SQLite pass: $((t1 - t0)) s (exit $status)"

cluster=$(mktemp -d /tmp/yzt-test-pg.XXXXXX)
trap 'scripts/pg_test_cluster.sh stop "$cluster"' EXIT INT TERM
if url=$(scripts/pg_test_cluster.sh start "$cluster"); then
  echo "== tests on PostgreSQL ($url)"
  pg_status=0
  YZT_TEST_DATABASE="$url" "$PY" -m pytest -n 2 "$@" tests || pg_status=$?
  t2=$(date +%s)
  echo "== PostgreSQL pass: $((t2 - t1)) s (exit $pg_status)"
  [ "$pg_status" = 0 ] || status=$pg_status
else
  echo "== could not start a PostgreSQL cluster: the PostgreSQL pass FAILED" >&2
  status=1
fi
exit "$status"
