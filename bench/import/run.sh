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
# rows, the closure) out to files and back in with COPY into a database migrated the same way:
# what this schema costs for these rows with no importer at all (no CSV, no mapping, no
# validation, no JSON to build; references taken as checked, as mahali_write_batch checks them
# itself). Once on one backend (one transaction, timed per table), once on two backends at the
# same time (the rows halved by id, as the importer uses two). Then the same resources and
# versions in the layout DESIGN.md suggests (search values as columns and arrays of the
# resource's own row, GIN and GiST indexes; a history row per version; no audit), also on one
# and on two backends. And last the resources' JSON alone, current and history, in two tables
# without any index: what keeping the resources and a version of each costs before anything is
# searchable. No importer writing these rows can be faster than its floor.
floor_tables="resource:rtype,id,version,last_updated,deleted,content
resource_history:rtype,id,version,last_updated,method,status,content
audit_event:at,actor,action,rtype,id,version,remote_addr
sp_string:rtype,id,param,norm,value
sp_token:rtype,id,param,system,code
sp_ref:rtype,id,param,target_type,target_id
sp_date:rtype,id,param,lo,hi
sp_geo:rtype,id,param,geog,geom
sp_below:rtype,anc,id,depth"
lean_select="SELECT r.rtype, r.id, r.version, r.last_updated, r.deleted, r.content,
 (SELECT array_agg(t.param || '|' || coalesce(t.system, '') || '|' || t.code) FROM sp_token t WHERE t.rtype = r.rtype AND t.id = r.id),
 (SELECT min(x.norm) FROM sp_string x WHERE x.rtype = r.rtype AND x.id = r.id),
 (SELECT array_agg(f.param || '|' || f.target_type || '/' || f.target_id) FROM sp_ref f WHERE f.rtype = r.rtype AND f.id = r.id),
 (SELECT array_agg(b.anc) FROM sp_below b WHERE b.rtype = r.rtype AND b.id = r.id),
 (SELECT g.geog FROM sp_geo g WHERE g.rtype = r.rtype AND g.id = r.id AND g.param = 'position' LIMIT 1)
 FROM resource r"
lean_tables="lean:rtype,id,version,last_updated,deleted,content,tokens,name_norm,refs,ancestors,position
lean_history:rtype,id,version,last_updated,content"
json_tables="json_current:rtype,id,version,last_updated,content
json_history:rtype,id,version,last_updated,content"
lean_ddl=(
    -c "CREATE TABLE json_current (rtype text, id text, version int, last_updated timestamptz, content jsonb)"
    -c "CREATE TABLE json_history (rtype text, id text, version int, last_updated timestamptz, content jsonb)"
    -c "CREATE TABLE lean (rtype text, id text, version int, last_updated timestamptz, deleted bool, content jsonb, tokens text[], name_norm text, refs text[], ancestors text[], position geography(Point, 4326), PRIMARY KEY (rtype, id))"
    -c "CREATE INDEX ON lean USING gin (tokens)" -c "CREATE INDEX ON lean (rtype, name_norm text_pattern_ops)"
    -c "CREATE INDEX ON lean USING gin (name_norm gin_trgm_ops)" -c "CREATE INDEX ON lean USING gin (refs)"
    -c "CREATE INDEX ON lean USING gin (ancestors)" -c "CREATE INDEX ON lean USING gist (position)"
    -c "CREATE INDEX ON lean (rtype, last_updated, id)"
    -c "CREATE TABLE lean_history (seq bigint GENERATED ALWAYS AS IDENTITY, rtype text, id text, version int, last_updated timestamptz, content jsonb, PRIMARY KEY (rtype, id, version))"
    -c "CREATE UNIQUE INDEX ON lean_history (seq)" -c "CREATE INDEX ON lean_history (rtype, seq)"
)
floor_db() { # name: a new database migrated like the registry, with the lean tables; prints its URL
    local u=${url/dbname=mahali/dbname=$1}
    psql -X -q -v ON_ERROR_STOP=1 "$url" -c "CREATE DATABASE $1"
    "$mahali" migrate --database "$u" >>"$work/migrate.log" 2>&1 || die "migrating $1 failed"
    psql -X -q -v ON_ERROR_STOP=1 "$u" "${lean_ddl[@]}"
    echo "$u"
}
floor_script() { # tables half...: a psql script loading those tables' files of the halves, timed per table
    local tables=$1 t cols h
    shift
    printf '%s\n' '\timing on' 'BEGIN;' "SELECT set_config('mahali.refs_checked', 'on', true);"
    while IFS=: read -r t cols; do
        printf '%s\n' "\\echo table $t"
        for h in "$@"; do printf '%s\n' "\\copy $t ($cols) FROM '$work/floor.$t.$h' (FORMAT binary)"; done
    done <<<"$tables"
    printf '%s\n' '\echo table commit' 'COMMIT;'
}
floor_line() { # name seconds [extra]
    echo "import.$1: rows=$rows seconds=$2 rows_per_s=$(awk -v r="$rows" -v s="$2" 'BEGIN { printf "%.0f", r / s }') ratio_vs_copy=$(awk -v a="$2" -v b="$copy_best" 'BEGIN { printf "%.1f", a / b }')${3:+ $3}"
}
floor_run() { # name tables url1 url2: one backend, then two; prints the lines
    local name=$1 tables=$2 u1=$3 u2=$4 t0 t1 out s
    floor_script "$tables" 0 1 >"$work/floor.1.sql"
    t0=$(now)
    out=$(psql -X -v ON_ERROR_STOP=1 "$u1" -f "$work/floor.1.sql") || die "the $name floor failed"
    t1=$(now)
    floor_line "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
        "$( [[ $name != floor ]] || echo "table_rows=$(psql -X -At "$u1" -c "SELECT (SELECT count(*) FROM resource) + (SELECT count(*) FROM resource_history) + (SELECT count(*) FROM audit_event) + (SELECT count(*) FROM sp_string) + (SELECT count(*) FROM sp_token) + (SELECT count(*) FROM sp_ref) + (SELECT count(*) FROM sp_date) + (SELECT count(*) FROM sp_geo) + (SELECT count(*) FROM sp_below)")")"
    # per table: the \timing lines after each "table X" marker, summed
    awk -v n="$name" '/^table /{ if (t != "") printf "import.%s.%s: seconds=%.3f\n", n, t, s / 1000; t = $2; s = 0 }
                      /^Time: /{ if (t != "") s += $2 }
                      END { if (t != "") printf "import.%s.%s: seconds=%.3f\n", n, t, s / 1000 }' <<<"$out"
    floor_script "$tables" 0 >"$work/floor.a.sql"
    floor_script "$tables" 1 >"$work/floor.b.sql"
    t0=$(now)
    psql -X -q -v ON_ERROR_STOP=1 "$u2" -f "$work/floor.a.sql" >/dev/null &
    local pa=$!
    psql -X -q -v ON_ERROR_STOP=1 "$u2" -f "$work/floor.b.sql" >/dev/null || die "the $name floor (second backend) failed"
    wait "$pa" || die "the $name floor (first backend) failed"
    t1=$(now)
    floor_line "$name.two_backends" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
}
floor() { # prints the import.floor* lines
    local t cols h u1 u2
    rows=$(node -p "JSON.parse(require('fs').readFileSync('$work/first.json','utf8')).rows")
    for h in 0 1; do
        while IFS=: read -r t cols; do
            psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy (SELECT $cols FROM $t WHERE abs(hashtext(id)) % 2 = $h) TO '$work/floor.$t.$h' (FORMAT binary)"
        done <<<"$floor_tables"
        psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy (SELECT * FROM ($(tr '\n' ' ' <<<"$lean_select")) x WHERE abs(hashtext(id)) % 2 = $h) TO '$work/floor.lean.$h' (FORMAT binary)"
        psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy (SELECT rtype, id, version, last_updated, content FROM resource_history WHERE abs(hashtext(id)) % 2 = $h ORDER BY seq) TO '$work/floor.lean_history.$h' (FORMAT binary)"
        cp "$work/floor.lean_history.$h" "$work/floor.json_history.$h"
        psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy (SELECT rtype, id, version, last_updated, content FROM resource WHERE abs(hashtext(id)) % 2 = $h) TO '$work/floor.json_current.$h' (FORMAT binary)"
    done
    u1=$(floor_db mahali_floor1)
    u2=$(floor_db mahali_floor2)
    floor_run floor "$floor_tables" "$u1" "$u2"
    floor_run floor.lean "$lean_tables" "$u1" "$u2"
    floor_run floor.json "$json_tables" "$u1" "$u2"
    psql -X -q "$url" -c "DROP DATABASE mahali_floor1" -c "DROP DATABASE mahali_floor2"
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
