#!/usr/bin/env bash
# ctest fixture `pg` (setup): start one embedded PostgreSQL + PostGIS cluster for the test run.
#   pg_up.sh BIN TESTDIR
# Writes TESTDIR/conninfo (libpq conninfo of the cluster's `mahali` database) and
# TESTDIR/cluster_dir (the cluster folder, for pg_down.sh). Exits 77 (ctest: skipped) when no
# PostgreSQL server with PostGIS is installed; the e2e tests then skip themselves too.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BIN TESTDIR" >&2
  exit 2
fi
BIN=$1
TESTDIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)

have_pg=0
for initdb in /usr/lib/postgresql/*/bin/initdb; do
  [ -x "$initdb" ] || continue
  ver=$(basename "$(dirname "$(dirname "$initdb")")")
  if [ -f "/usr/share/postgresql/$ver/extension/postgis.control" ]; then
    have_pg=1
  fi
done
if [ "$have_pg" -eq 0 ]; then
  echo "pg_up: SKIP: no PostgreSQL server with PostGIS installed" \
       "(need /usr/lib/postgresql/N/bin/initdb and /usr/share/postgresql/N/extension/postgis.control)" >&2
  exit 77
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "pg_up: SKIP: running as root but there is no user 'postgres' to run the cluster as" >&2
  exit 77
fi
if [ ! -x "$BIN" ]; then
  echo "pg_up: $BIN is not an executable (build the mahali target first)" >&2
  exit 1
fi

mkdir -p "$TESTDIR"
TESTDIR=$(cd "$TESTDIR" && pwd)

# Remove whatever an earlier (possibly interrupted) run left behind.
"$HERE/pg_down.sh" "$BIN" "$TESTDIR" || true

# As root the cluster runs as `postgres`, which must be able to reach the folder.
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$TESTDIR" 2>/dev/null; then
  CLUSTER=$(mktemp -d /tmp/mahali-test.XXXXXX)
  chmod 755 "$CLUSTER"
  CLUSTER=$CLUSTER/db
else
  CLUSTER=$TESTDIR/db
fi
# Recorded before the start so that pg_down.sh can clean up even after a failed start.
printf '%s\n' "$CLUSTER" > "$TESTDIR/cluster_dir"

export MAHALI_PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
echo "pg_up: starting the test cluster in $CLUSTER"
if ! "$BIN" db start --data "$CLUSTER"; then
  echo "pg_up: '$BIN db start --data $CLUSTER' failed" >&2
  [ -f "$CLUSTER/log/postgresql.log" ] && tail -n 40 "$CLUSTER/log/postgresql.log" >&2
  exit 1
fi
CONNINFO=$("$BIN" db url --data "$CLUSTER" | tail -n 1)
if [ -z "$CONNINFO" ]; then
  echo "pg_up: '$BIN db url --data $CLUSTER' printed nothing" >&2
  exit 1
fi
printf '%s\n' "$CONNINFO" > "$TESTDIR/conninfo.tmp"
mv "$TESTDIR/conninfo.tmp" "$TESTDIR/conninfo"
echo "pg_up: conninfo: $CONNINFO"
