#!/usr/bin/env bash
# bench/run sync: a full walk of the change feed (IHE mCSD ITI-91, GET [base]/_history and its
# next links, _count=500) over HTTP, as an HR system or a mirroring Directory does it, against
# PostgreSQL's own COPY (SELECT the stored JSON of the same versions) TO STDOUT, in the same run,
# in the same private cluster. The data: 100,000 Practitioners and 100,000 PractitionerRoles
# (bench/sync/gen.mjs, ~1 KB each), loaded with `mahali import fhir` (NDJSON): 200,000 versions.
#
# Prints
#   sync.copy: versions=… seconds=… per_s=…
#   sync.history: resources=… seconds=… per_s=… ratio=… pages=… MB=…
# (ratio = the walk's versions per second / COPY's; goal ≥ 0.5) and, on an official run, rewrites
# the sync block of docs/PERFORMANCE.md.
# Knobs: BENCH_SYNC_WORKERS (100000 per type; other values leave docs/ alone), BENCH_KEEP=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
say() { printf '== %s\n' "$*" >&2; }
die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}
workers=${BENCH_SYNC_WORKERS:-100000}
official=1
[[ $workers == 100000 ]] || official=0
command -v psql >/dev/null 2>&1 || die "psql is missing (Debian package postgresql-client-15)"
command -v node >/dev/null 2>&1 || die "node is missing (Debian package nodejs)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "node 18 or newer is needed (found $(node --version))"

say "building mahali (Release, build/)"
"$root/scripts/bootstrap.sh" "$root/build" Release >/dev/null
[[ -x $root/build/mahali ]] || die "build/mahali was not built"

# shellcheck source=../lib/cluster.sh
source "$root/bench/lib/cluster.sh"
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

say "generating $workers Practitioners + $workers PractitionerRoles and loading them (mahali import fhir)"
node bench/sync/gen.mjs "$workers" >"$work/workers.ndjson"
t0=$(now)
"$mahali" import fhir "$work/workers.ndjson" --database "$url" --quiet --report "$work/load.json" \
    >"$work/load.out" 2>"$work/load.err" || { cat "$work/load.err" >&2; die "the load failed"; }
t1=$(now)
say "loaded in $(secs "$t0" "$t1") s"
psql -X -q "$url" -c "VACUUM ANALYZE resource_history"
versions=$(psql -X -At "$url" -c "SELECT count(*) FROM resource_history WHERE rtype IN ('Practitioner', 'PractitionerRole')")
((versions == 2 * workers)) || die "expected $((2 * workers)) versions, the store has $versions"

# ---- COPY of the stored JSON of the same versions (best of 3) ----------------------------------
copy_best=
for run in 1 2 3; do
    t0=$(now)
    psql -X -q -v ON_ERROR_STOP=1 "$url" \
        -c "COPY (SELECT content FROM resource_history WHERE rtype IN ('Practitioner', 'PractitionerRole') ORDER BY seq DESC) TO STDOUT" >"$work/copy.out"
    t1=$(now)
    s=$(secs "$t0" "$t1")
    if [[ -z $copy_best ]] || awk -v a="$s" -v b="$copy_best" 'BEGIN { exit !(a < b) }'; then copy_best=$s; fi
done
copy_lines=$(wc -l <"$work/copy.out")
copy_mb=$(awk -v b="$(stat -c %s "$work/copy.out")" 'BEGIN { printf "%.0f", b / 1e6 }')
rm -f "$work/copy.out"
copy_rate=$(awk -v n="$copy_lines" -v s="$copy_best" 'BEGIN { printf "%.0f", n / s }')
echo "sync.copy: versions=$copy_lines seconds=$copy_best per_s=$copy_rate MB=$copy_mb (best of 3)"

# ---- the server and the walk (best of 3) --------------------------------------------------------
token=$("$mahali" token create --role admin --name bench --database "$url" | tail -n 1)
"$mahali" serve --listen 127.0.0.1:0 --database "$url" >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
base=
for _ in $(seq 1 300); do
    base=$(sed -n 's/.*FHIR base \(http[^ )]*\).*/\1/p' "$work/serve.out" | head -n 1)
    [[ -n $base ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; die "the server did not start"; }
    sleep 0.1
done
[[ -n $base ]] || die "the server did not say where it listens"
walk_best= walk_json=
for run in 1 2 3; do
    j=$(node bench/sync/walk.mjs "$base" "$token" 500)
    s=$(node -p "JSON.parse('$j').seconds.toFixed(3)")
    n=$(node -p "JSON.parse('$j').entries")
    ((n == versions)) || die "the walk saw $n versions, the store has $versions"
    if [[ -z $walk_best ]] || awk -v a="$s" -v b="$walk_best" 'BEGIN { exit !(a < b) }'; then
        walk_best=$s
        walk_json=$j
    fi
done
pages=$(node -p "JSON.parse('$walk_json').pages")
walk_mb=$(node -p "Math.round(JSON.parse('$walk_json').bytes / 1e6)")
walk_rate=$(awk -v n="$versions" -v s="$walk_best" 'BEGIN { printf "%.0f", n / s }')
ratio=$(awk -v a="$walk_rate" -v b="$copy_rate" 'BEGIN { printf "%.2f", a / b }')
line="sync.history: resources=$versions seconds=$walk_best per_s=$walk_rate ratio=$ratio pages=$pages MB=$walk_mb"
echo "$line"
elapsed=$(($(date +%s) - start_time))
say "done in ${elapsed}s"

if ((official)); then
    node bench/sync/report.mjs --doc "$root/docs/PERFORMANCE.md" --copy "$copy_best" --copy-rows "$copy_lines" \
        --copy-mb "$copy_mb" --line "$line" --elapsed "$elapsed" --loadavg-start "$loadavg_start" \
        --postgres "$(psql -X -At "$url" -c 'SHOW server_version')"
    say "results written to docs/PERFORMANCE.md"
else
    say "a trial run (BENCH_SYNC_WORKERS set): docs/PERFORMANCE.md left as it is"
fi
