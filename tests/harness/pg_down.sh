#!/usr/bin/env bash
# ctest fixture `pg` (cleanup): stop the cluster started by pg_up.sh and remove it.
#   pg_down.sh BIN TESTDIR
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BIN TESTDIR" >&2
  exit 2
fi
BIN=$1
TESTDIR=$2

rm -f "$TESTDIR/conninfo" "$TESTDIR/conninfo.tmp"
CLUSTER=$TESTDIR/db
if [ -f "$TESTDIR/cluster_dir" ]; then
  CLUSTER=$(cat "$TESTDIR/cluster_dir")
fi
[ -n "$CLUSTER" ] || exit 0

if [ -d "$CLUSTER" ]; then
  if [ -f "$CLUSTER/pg/postmaster.pid" ] && [ -x "$BIN" ]; then
    echo "pg_down: stopping the test cluster in $CLUSTER"
    "$BIN" db stop --data "$CLUSTER" || echo "pg_down: '$BIN db stop' failed" >&2
  fi
  # Still running (db stop failed)? Stop the postmaster this fixture started, by its pid.
  if [ -f "$CLUSTER/pg/postmaster.pid" ]; then
    pid=$(head -n 1 "$CLUSTER/pg/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "pg_down: stopping postmaster $pid directly" >&2
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$CLUSTER"
fi
# A /tmp folder made by pg_up.sh (mktemp -d /tmp/mahali-test.XXXXXX) holds only the cluster.
parent=$(dirname "$CLUSTER")
case "$parent" in
  /tmp/mahali-test.*) rmdir "$parent" 2>/dev/null || rm -rf "$parent" ;;
esac
rm -f "$TESTDIR/cluster_dir"
