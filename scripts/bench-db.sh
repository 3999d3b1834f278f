#!/usr/bin/env bash
# Database backup and drill benchmark against the plain tools, on a pgbench database in a
# container of the local test image (scripts/test-images.sh). Not part of the test suite.
#
#   scripts/bench-db.sh [SCALE] [RUNS]     # default: scale 20 (2 million rows), 3 runs
#
# Each run, in alternating order so that drift hits both sides alike:
#   backup: `drctl backup` of the stack   vs  `docker exec … pg_dump --create DB > /dev/null`
#   drill:  `drctl drill` (scratch server start + load + one count check)
#           vs  fresh container start + `psql < dump.sql` streamed from a local file
#           + the same count query
# It prints wall times, ratios and drctl's peak RSS (GNU time) per run, then the median
# of each ratio. Uses target/release/drctl; build it first with `cargo build --release`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
scale=${1:-20}
runs=${2:-3}
source scripts/bench-lib.sh
work=$(mktemp -d /tmp/drctl-bench.XXXXXX)
src=drctl-bench-src
ref=drctl-bench-ref
cleanup() {
    docker rm -f -v "$src" "$ref" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== pgbench scale $scale into $src" >&2
start_pg "$src"
psql_in "$src" postgres "CREATE DATABASE b2m" >/dev/null
docker exec -e PGPASSWORD="$pw" "$src" /usr/lib/postgresql/15/bin/pgbench -q -i -s "$scale" \
    -U postgres -h 127.0.0.1 b2m 2>&1 | tail -n 1 >&2
rows=$(psql_in "$src" b2m "SELECT count(*) FROM pgbench_accounts")
docker exec -e PGUSER=postgres -e PGPASSWORD="$pw" "$src" pg_dump --create --dbname b2m >"$work/b2m.sql"
echo "== $rows rows; plain dump $(stat -c %s "$work/b2m.sql") bytes" >&2

write_config "$work"
cat >"$work/etc/schedules/bench.toml" <<EOF
[stack.p2m]
rpo = "1d"
rto = "1h"
[[stack.p2m.source]]
name = "db"
kind = "postgres"
container = "$src"
databases = ["b2m"]
EOF
write_count_drill "$work" "$rows"
init_repo "$work"
# The first backup stores everything (the runs below add only what changed); it also
# warms the server's cache.
t0=$(now)
/usr/bin/time -v -o "$work/time.first" "$drctl" --quiet backup p2m >/dev/null
printf 'first backup: drctl %s s (peak RSS %s MB), repository %s\n' "$(secs "$t0" "$(now)")" \
    "$(rss "$work/time.first")" "$(du -sh "$work/repo" | cut -f1)"

ratios=()

for i in $(seq 1 "$runs"); do
    # Backup: the plain dump, then drctl (order swapped on even runs).
    order=(plain drctl)
    ((i % 2 == 0)) && order=(drctl plain)
    for who in "${order[@]}"; do
        t0=$(now)
        if [[ $who == plain ]]; then
            docker exec -e PGUSER=postgres -e PGPASSWORD="$pw" "$src" pg_dump --create --dbname b2m >/dev/null
            b_plain=$(secs "$t0" "$(now)")
        else
            /usr/bin/time -v -o "$work/time.b" "$drctl" --quiet backup p2m >/dev/null
            b_drctl=$(secs "$t0" "$(now)")
        fi
    done
    # Drill against a fresh container fed from a local file.
    for who in "${order[@]}"; do
        if [[ $who == plain ]]; then
            t0=$(now)
            start_pg "$ref"
            t1=$(now)
            docker exec -i -e PGUSER=postgres -e PGPASSWORD="$pw" "$ref" \
                psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -d postgres <"$work/b2m.sql" >/dev/null
            t2=$(now)
            got=$(psql_in "$ref" b2m "SELECT count(*) FROM pgbench_accounts")
            t3=$(now)
            [[ $got == "$rows" ]] || { echo "error: reference load has $got rows" >&2; exit 1; }
            d_plain=$(secs "$t0" "$t3")
            l_plain=$(secs "$t1" "$t2")
            docker rm -f -v "$ref" >/dev/null
        else
            /usr/bin/time -v -o "$work/time.d" "$drctl" --quiet drill p2m --json >"$work/drill.json"
            read -r d_drctl l_drctl < <(python3 -c "
import json, sys
r = json.load(open('$work/drill.json'))
r = r[0] if isinstance(r, list) else r.get('drills', [r])[0]
assert r['verdict'] == 'PASS', r
load = sum(p['seconds'] for p in r['phases'] if p['name'] == 'database load')
print(f\"{r['rto_secs']:.2f} {load:.2f}\")")
        fi
    done
    ratios+=("$(ratio "$b_drctl" "$b_plain") $(ratio "$l_drctl" "$l_plain") $(ratio "$d_drctl" "$d_plain")")
    printf 'run %d  backup: drctl %s s (peak RSS %s MB) / pg_dump %s s = %s\n' "$i" \
        "$b_drctl" "$(rss "$work/time.b")" "$b_plain" "$(ratio "$b_drctl" "$b_plain")"
    printf 'run %d  drill load: drctl %s s / psql %s s = %s\n' "$i" \
        "$l_drctl" "$l_plain" "$(ratio "$l_drctl" "$l_plain")"
    printf 'run %d  drill RTO: drctl %s s (peak RSS %s MB) / start + psql + check %s s = %s\n' "$i" \
        "$d_drctl" "$(rss "$work/time.d")" "$d_plain" "$(ratio "$d_drctl" "$d_plain")"
done
((runs > 0)) || exit 0
printf '%s\n' "${ratios[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
cols = list(zip(*rows))
print('median ratios over %d runs: backup %.2f, drill load %.2f, drill RTO %.2f'
      % (len(rows), *(statistics.median(c) for c in cols)))"
