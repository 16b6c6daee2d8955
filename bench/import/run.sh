#!/usr/bin/env bash
# bench/run import: `mahali import csv` of the WHO/KEMRI list of public health facilities in
# sub-Saharan Africa (98,745 rows, ../shared/data/facilities/, see importers/mappings/
# who-kemri-ssa-2019.json) against PostgreSQL's own COPY of the same file into a plain table of
# text columns, in the same run, in the same private cluster. The import does everything a
# real one does: CSV decoding, mapping, coordinate checks, jurisdictions from the admin columns,
# validation of every resource, versioning, history, audit, search and spatial index rows and
# the partof closure; COPY does none of it, so the ratio is the price of all that.
#
# Prints
#   import.who: rows=… seconds=… rows_per_s=… ratio_vs_copy=…
#   import.who.rerun: … (the same file again: every row unchanged, no new version)
#   import.copy: rows=… seconds=…
#   import.floor: … (COPY of every table row the first import wrote, into a second empty
#     registry, one backend: what the schema alone costs for these rows; per table below it)
# and, on an official run, rewrites the import block of docs/PERFORMANCE.md.
# Knobs: BENCH_IMPORT_FILE (another CSV; then give BENCH_IMPORT_MAPPING too; docs left alone),
# BENCH_KEEP=1 keeps the work folder.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
say() { printf '== %s\n' "$*" >&2; }
die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

file=${BENCH_IMPORT_FILE:-$root/../shared/data/facilities/who_kemri_ssa_public_health_facilities_2019.csv.gz}
mapping=${BENCH_IMPORT_MAPPING:-$root/importers/mappings/who-kemri-ssa-2019.json}
official=1
[[ -z ${BENCH_IMPORT_FILE:-} ]] || official=0
[[ -f $file ]] || die "the import bench needs $file (the project's shared test data, which a user's clone does not have); set BENCH_IMPORT_FILE and BENCH_IMPORT_MAPPING to use another list"
command -v psql >/dev/null 2>&1 || die "psql is missing (Debian package postgresql-client-15)"
command -v node >/dev/null 2>&1 || die "node is missing (Debian package nodejs)"

say "building mahali (Release, build/)"
"$root/scripts/bootstrap.sh" "$root/build" Release >/dev/null
[[ -x $root/build/mahali ]] || die "build/mahali was not built"

# shellcheck source=../lib/cluster.sh
source "$root/bench/lib/cluster.sh"

# ---- COPY: the file into a plain table of text columns (the header decides the columns) -----
decompress() { case $file in *.gz) gzip -dc -- "$file" ;; *) cat -- "$file" ;; esac; }
cols=$({ decompress || true; } | head -n 1 | sed 's/^\xEF\xBB\xBF//' | node -e '
  const h = require("fs").readFileSync(0, "utf8").trim();
  const names = []; let cur = "", q = false;
  for (const ch of h) { if (ch === "\"") q = !q; else if (ch === "," && !q) { names.push(cur); cur = ""; } else cur += ch; }
  names.push(cur);
  console.log(names.map((_, i) => `c${i + 1} text`).join(", "));')
copy_best=
for run in 1 2 3; do
    psql -X -q -v ON_ERROR_STOP=1 "$url" -c "DROP TABLE IF EXISTS bench_copy" -c "CREATE TABLE bench_copy ($cols)"
    t0=$(now)
    decompress | psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy bench_copy FROM STDIN (FORMAT csv, HEADER true)"
    t1=$(now)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [[ -z $copy_best ]] || awk -v a="$s" -v b="$copy_best" 'BEGIN { exit !(a < b) }'; then copy_best=$s; fi
done
copy_rows=$(psql -X -At "$url" -c "SELECT count(*) FROM bench_copy")
psql -X -q "$url" -c "DROP TABLE bench_copy"
echo "import.copy: rows=$copy_rows seconds=$copy_best (best of 3, decompression included as for the import)"

# ---- the import, then the same file again ------------------------------------------------------
run_import() { # name: prints the line, leaves $work/<name>.json
    local t0 t1 s rows rps
    t0=$(now)
    "$mahali" import csv "$file" --mapping "$mapping" --database "$url" --quiet \
        --report "$work/$1.json" >"$work/$1.out" 2>"$work/$1.err" || {
        local rc=$?
        ((rc == 1)) || { cat "$work/$1.err" >&2; die "the import failed (exit $rc)"; }
    }
    t1=$(now)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    rows=$(node -p "JSON.parse(require('fs').readFileSync('$work/$1.json','utf8')).rows")
    rps=$(awk -v r="$rows" -v s="$s" 'BEGIN { printf "%.0f", r / s }')
    counts=$(node -p "const r = JSON.parse(require('fs').readFileSync('$work/$1.json','utf8')); \`created=\${r.created} updated=\${r.updated} unchanged=\${r.unchanged} rejected=\${r.rejected}\`")
    echo "import.$2: rows=$rows seconds=$s rows_per_s=$rps ratio_vs_copy=$(awk -v a="$s" -v b="$copy_best" 'BEGIN { printf "%.1f", a / b }') $counts"
}
say "mahali import csv $(basename "$file") (first import into an empty registry)"
line1=$(run_import first who)
echo "$line1"
# ---- the floor: the rows the import wrote, COPY'd into an empty registry -------------------------
# Every table row the first import wrote (resources, versions, audit, search and spatial index
# rows, the closure) out to files and back in with COPY, in one transaction on one backend, into
# a second database migrated the same way: what this schema costs for these rows with no
# importer at all (no CSV, no mapping, no validation, no JSON; references taken as checked, as
# mahali_write_batch checks them itself). An importer on this schema cannot be faster than
# about this (or half of it, on two backends).
floor_tables="resource:rtype,id,version,last_updated,deleted,content
resource_history:rtype,id,version,last_updated,method,status,content
audit_event:at,actor,action,rtype,id,version,remote_addr
sp_string:rtype,id,param,norm,value
sp_token:rtype,id,param,system,code
sp_ref:rtype,id,param,target_type,target_id
sp_date:rtype,id,param,lo,hi
sp_geo:rtype,id,param,geog,geom
sp_below:rtype,anc,id,depth"
floor_url=${url/dbname=mahali/dbname=mahali_floor}
floor() { # prints import.floor and import.floor.<table> lines
    local script=$work/floor.sql t cols n
    psql -X -q -v ON_ERROR_STOP=1 "$url" -c "CREATE DATABASE mahali_floor"
    "$mahali" migrate --database "$floor_url" >>"$work/migrate.log" 2>&1 || die "migrating the floor database failed"
    printf '%s\n' '\timing on' 'BEGIN;' "SELECT set_config('mahali.refs_checked', 'on', true);" >"$script"
    while IFS=: read -r t cols; do
        psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy (SELECT $cols FROM $t) TO '$work/floor.$t' (FORMAT binary)"
        printf '%s\n' "\\echo table $t" "\\copy $t ($cols) FROM '$work/floor.$t' (FORMAT binary)" >>"$script"
    done <<<"$floor_tables"
    printf '%s\n' '\echo table commit' 'COMMIT;' >>"$script"
    local t0 t1 out
    t0=$(now)
    out=$(psql -X -v ON_ERROR_STOP=1 "$floor_url" -f "$script")
    t1=$(now)
    local s rows
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    rows=$(node -p "JSON.parse(require('fs').readFileSync('$work/first.json','utf8')).rows")
    n=$(psql -X -At "$floor_url" -c "SELECT (SELECT count(*) FROM resource) + (SELECT count(*) FROM resource_history) + (SELECT count(*) FROM audit_event) + (SELECT count(*) FROM sp_string) + (SELECT count(*) FROM sp_token) + (SELECT count(*) FROM sp_ref) + (SELECT count(*) FROM sp_date) + (SELECT count(*) FROM sp_geo) + (SELECT count(*) FROM sp_below)")
    echo "import.floor: rows=$rows seconds=$s rows_per_s=$(awk -v r="$rows" -v s="$s" 'BEGIN { printf "%.0f", r / s }') ratio_vs_copy=$(awk -v a="$s" -v b="$copy_best" 'BEGIN { printf "%.1f", a / b }') table_rows=$n"
    # per table: the \timing line after each "table X" marker
    awk '/^table /{t=$2} /^Time: /{ if (t != "") { printf "import.floor.%s: seconds=%.3f\n", t, $2 / 1000; t = "" } }' <<<"$out"
    # and the same resources in the layout DESIGN.md suggests (search values as columns and
    # arrays of the resource's own row, GIN and GiST indexes; a history row per version; no
    # audit): one row per resource and version instead of ~12
    local lean_q="SELECT r.rtype, r.id, r.version, r.last_updated, r.deleted, r.content,
          (SELECT array_agg(t.param || '|' || coalesce(t.system, '') || '|' || t.code) FROM sp_token t WHERE t.rtype = r.rtype AND t.id = r.id),
          (SELECT min(x.norm) FROM sp_string x WHERE x.rtype = r.rtype AND x.id = r.id),
          (SELECT array_agg(f.param || '|' || f.target_type || '/' || f.target_id) FROM sp_ref f WHERE f.rtype = r.rtype AND f.id = r.id),
          (SELECT array_agg(b.anc) FROM sp_below b WHERE b.rtype = r.rtype AND b.id = r.id),
          (SELECT g.geog FROM sp_geo g WHERE g.rtype = r.rtype AND g.id = r.id AND g.param = 'position' LIMIT 1)
        FROM resource r"
    lean_q=$(tr '\n' ' ' <<<"$lean_q")
    psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy ($lean_q) TO '$work/floor.lean' (FORMAT binary)"
    psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy (SELECT rtype, id, version, last_updated, content FROM resource_history ORDER BY seq) TO '$work/floor.lean.h' (FORMAT binary)"
    psql -X -q -v ON_ERROR_STOP=1 "$floor_url" \
        -c "CREATE TABLE lean (rtype text, id text, version int, last_updated timestamptz, deleted bool, content jsonb, tokens text[], name_norm text, refs text[], ancestors text[], position geography(Point, 4326), PRIMARY KEY (rtype, id))" \
        -c "CREATE INDEX ON lean USING gin (tokens)" -c "CREATE INDEX ON lean (rtype, name_norm text_pattern_ops)" \
        -c "CREATE INDEX ON lean USING gin (name_norm gin_trgm_ops)" -c "CREATE INDEX ON lean USING gin (refs)" \
        -c "CREATE INDEX ON lean USING gin (ancestors)" -c "CREATE INDEX ON lean USING gist (position)" \
        -c "CREATE INDEX ON lean (rtype, last_updated, id)" \
        -c "CREATE TABLE lean_history (seq bigint GENERATED ALWAYS AS IDENTITY, rtype text, id text, version int, last_updated timestamptz, content jsonb, PRIMARY KEY (rtype, id, version))" \
        -c "CREATE UNIQUE INDEX ON lean_history (seq)" -c "CREATE INDEX ON lean_history (rtype, seq)"
    t0=$(now)
    psql -X -q -v ON_ERROR_STOP=1 "$floor_url" -c "BEGIN" \
        -c "\\copy lean FROM '$work/floor.lean' (FORMAT binary)" \
        -c "\\copy lean_history (rtype, id, version, last_updated, content) FROM '$work/floor.lean.h' (FORMAT binary)" \
        -c "COMMIT"
    t1=$(now)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    echo "import.floor.lean: rows=$rows seconds=$s rows_per_s=$(awk -v r="$rows" -v s="$s" 'BEGIN { printf "%.0f", r / s }') ratio_vs_copy=$(awk -v a="$s" -v b="$copy_best" 'BEGIN { printf "%.1f", a / b }')"
    psql -X -q "$url" -c "DROP DATABASE mahali_floor"
    rm -f "$work"/floor.*
}
say "the floor: COPY of the rows the import wrote into an empty registry"
floor_lines=$(floor)
echo "$floor_lines"
line0=$(head -n 1 <<<"$floor_lines")

say "the same file again (every row unchanged)"
line2=$(run_import rerun who.rerun)
echo "$line2"
res_count=$(psql -X -At "$url" -c "SELECT count(*) FROM resource")
hist_count=$(psql -X -At "$url" -c "SELECT count(*) FROM resource_history")
echo "import.store: resources=$res_count versions=$hist_count"
elapsed=$(($(date +%s) - start_time))
say "done in ${elapsed}s"

if ((official)); then
    node bench/import/report.mjs --doc "$root/docs/PERFORMANCE.md" --copy "$copy_best" --copy-rows "$copy_rows" \
        --first "$line1" --rerun "$line2" --floor "$line0" --floor-tables "$(tail -n +2 <<<"$floor_lines")" --resources "$res_count" --versions "$hist_count" \
        --elapsed "$elapsed" --loadavg-start "$loadavg_start" \
        --postgres "$(psql -X -At "$url" -c 'SHOW server_version')"
    say "results written to docs/PERFORMANCE.md"
else
    say "a trial run (BENCH_IMPORT_FILE set): docs/PERFORMANCE.md left as it is"
fi
