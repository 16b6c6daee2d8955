# Sourced by bench/import/run.sh and bench/sync/run.sh: a private work folder with a copy of the
# Release build and an embedded cluster under /tmp (the same settings for every side measured:
# a bench, not a production cluster), migrated; everything stopped and removed on exit, also on
# failure and Ctrl-C (BENCH_KEEP=1 keeps the folder). Needs $root, say and die; sets work, data,
# mahali, url, start_time, loadavg_start; stops $server_pid too if the caller sets it.
work=$(mktemp -d /tmp/mahali-bench.XXXXXX)
chmod 755 "$work"
data=$work/data
cp "$root/build/mahali" "$work/mahali"
mahali=$work/mahali
cluster_started=0
server_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -z $server_pid ]] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
    if ((cluster_started)); then
        "$mahali" db stop --data "$data" >/dev/null 2>&1 || echo "bench: could not stop the cluster in $data" >&2
    fi
    if [[ -n ${BENCH_KEEP:-} ]]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_time=$(date +%s)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${loadavg_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    echo "bench: warning: the machine is busy (load average $loadavg_start on $(nproc) cores); figures will be low" >&2
fi
say "private cluster in $data"
export MAHALI_PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=1GB -c max_connections=100"
cluster_started=1
"$mahali" db start --data "$data" >"$work/db-start.log" 2>&1 || {
    cat "$work/db-start.log" >&2
    die "the cluster did not start"
}
url=$("$mahali" db url --data "$data" | tail -n 1)
"$mahali" migrate --database "$url" >"$work/migrate.log" 2>&1 || {
    cat "$work/migrate.log" >&2
    die "migrations failed"
}
now() { date +%s.%N; }
