#!/usr/bin/env bash
# Continuous archiving benchmark (issue 14, point 7), on a pgbench database in a container
# of the local test image (scripts/test-images.sh). Not part of the test suite.
#
#   scripts/bench-pitr.sh [SCALE] [SECONDS] [TPS]   # default: 20 (2 million rows), 3600, 100
#
# It measures, in one run:
#   base backup  `drctl backup` of a pitr source whose only dumped database is the empty
#                `postgres` (so the run is the base backup)  vs
#                `docker exec … pg_basebackup -D - -Ft -X none -c fast > /dev/null`
#                with the archive running, as on a server (drctl then runs -X none too;
#                beside it, `-X fetch`, what drctl runs when no archive is live)
#   archive lag  under pgbench at a steady TPS for SECONDS: every 10 s a row is committed
#                and the time until the repository holds a WAL copy covering the commit
#                is measured; p50, p99 and max
#   growth       what the repository grew by for those SECONDS of WAL (before and after a
#                prune), against the same WAL (received by a second pg_receivewal)
#                compressed by `zstd -3`
#   RTO          `drctl drill --at` the end of the load (the base backup plus all the
#                WAL replayed in a scratch server, one count check) vs a fresh container
#                loaded from the plain dump (`psql < dump.sql`) with the same check
#   peak RSS     of `drctl archive` and of the drill (GNU time)
# Uses target/release/drctl; build it first with `cargo build --release`. DRCTL_ALT=PATH
# times another build's base backup after each of drctl's (same repository), so that two
# builds are compared in one run: single runs vary more than the builds differ.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
scale=${1:-20}
duration=${2:-3600}
tps=${3:-100}
source scripts/bench-lib.sh
command -v zstd >/dev/null || { echo "error: zstd missing (apt-get install zstd)" >&2; exit 2; }

work=$(mktemp -d /tmp/drctl-bench-pitr.XXXXXX)
src=drctl-bench-pitr-src
ref=drctl-bench-pitr-ref
archive_pid=
cleanup() {
    [[ -n $archive_pid ]] && pkill -TERM -P "$archive_pid" 2>/dev/null || true
    docker rm -f -v "$src" "$ref" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

mib() { python3 -c "print(f'{$1 / 1048576:.1f} MiB')"; }
list_repo() { (cd "$1" && find . -type f -printf '%s %P\n'); }
# What the repository gained since objects.before, by kind of object (its top directory).
breakdown() {
    list_repo "$work/repo" | python3 -c "
import sys, collections
before = {l.split(' ', 1)[1].strip() for l in open('$work/objects.before')}
n, b = collections.Counter(), collections.Counter()
for l in sys.stdin:
    size, path = l.split(' ', 1)
    if path.strip() not in before:
        k = path.split('/')[0]
        n[k] += 1; b[k] += int(size)
print('  new objects: ' + ', '.join(f'{k} {n[k]} ({b[k] / 1048576:.1f} MiB)' for k in sorted(n)))"
}

echo "== pgbench scale $scale into $src" >&2
start_pg "$src"
psql_in "$src" postgres "CREATE DATABASE b2m" >/dev/null
docker exec -e PGPASSWORD="$pw" "$src" pgbench -q -i -s "$scale" -U postgres -h /var/run/postgresql b2m 2>&1 |
    tail -n 1 >&2
psql_in "$src" b2m "CREATE TABLE probes (at timestamptz)" >/dev/null
rows=$(psql_in "$src" b2m "SELECT count(*) FROM pgbench_accounts")

write_config "$work"
cat >"$work/etc/schedules/bench.toml" <<EOF
[stack.p2m]
rpo = "1m"
[[stack.p2m.source]]
name = "db"
kind = "postgres"
container = "$src"
databases = ["postgres"]
pitr = true
EOF
write_count_drill "$work" "$rows" b2m
init_repo "$work"

# The archive runs from here on, as it does on a server: a base backup then leaves its
# WAL to it (-X none).
/usr/bin/time -v -o "$work/time.archive" "$drctl" --quiet archive p2m 2>"$work/archive.log" &
archive_pid=$!
until "$drctl" --json snapshots 2>/dev/null | grep -q '"wal"'; do sleep 0.2; done

# Base backup, alternating with the plain tool, BASE_RUNS times each (the first drctl run
# stores everything, the others little). Both vary by a second run to run here (the
# server's checkpoint and I/O), so the ratio is of the medians.
base_runs=${BASE_RUNS:-7}
: >"$work/base.times"
: >"$work/base-fetch.times"
for ((i = 1; i <= base_runs; i++)); do
    t0=$(now)
    docker exec -e PGPASSWORD="$pw" "$src" pg_basebackup -U postgres -h /var/run/postgresql \
        -D - -Ft -X none -c fast >/dev/null 2>&1
    plain=$(secs "$t0" "$(now)")
    # What drctl runs without a live archive (-X fetch: the WAL the backup needs is in
    # its tar, so it starts a server by itself), timed the same way.
    t0=$(now)
    docker exec -e PGPASSWORD="$pw" "$src" pg_basebackup -U postgres -h /var/run/postgresql \
        -D - -Ft -X fetch -c fast >/dev/null 2>&1
    fetch=$(secs "$t0" "$(now)")
    t0=$(now)
    /usr/bin/time -v -o "$work/time.base" "$drctl" --quiet backup p2m >/dev/null
    ours=$(secs "$t0" "$(now)")
    printf 'base backup %d: drctl %s s (peak RSS %s MB) / pg_basebackup -X none %s s = %s; -X fetch %s s\n' \
        "$i" "$ours" "$(rss "$work/time.base")" "$plain" "$(ratio "$ours" "$plain")" "$fetch"
    echo "$ours $plain" >>"$work/base.times"
    echo "$ours $fetch" >>"$work/base-fetch.times"
    if [[ -n ${DRCTL_ALT:-} ]]; then
        t0=$(now)
        "$DRCTL_ALT" --quiet backup p2m >/dev/null
        alt=$(secs "$t0" "$(now)")
        printf '  %s: %s s = %s\n' "$DRCTL_ALT" "$alt" "$(ratio "$alt" "$plain")"
        echo "$alt $plain" >>"$work/base-alt.times"
    fi
done
python3 scripts/medians.py "$work/base.times" "base backup" drctl "pg_basebackup -X none"
echo "drctl's base backups left their WAL to the archive: $("$drctl" --json snapshots p2m |
    python3 -c "import json,sys; print(sorted({s['sources'][0]['base'].get('wal_in_archive', False) for s in json.load(sys.stdin)}))")"
python3 scripts/medians.py "$work/base-fetch.times" "base backup" drctl "pg_basebackup -X fetch"
if [[ -n ${DRCTL_ALT:-} ]]; then
    python3 scripts/medians.py "$work/base-alt.times" "base backup" "$DRCTL_ALT" "pg_basebackup -X none"
fi
repo_before=$(du -sb "$work/repo" | cut -f1)
list_repo "$work/repo" >"$work/objects.before"

# The reference copy of the WAL: a second receiver on a slot of its own.
psql_in "$src" postgres "SELECT pg_create_physical_replication_slot('bench_ref', true)" >/dev/null
docker exec "$src" mkdir -p /tmp/ref-wal
docker exec -d -e PGPASSWORD="$pw" "$src" pg_receivewal -U postgres -h /var/run/postgresql \
    -D /tmp/ref-wal -S bench_ref
start_lsn=$(psql_in "$src" postgres "SELECT pg_current_wal_lsn()")

until [[ $(psql_in "$src" postgres "SELECT count(*) FROM pg_replication_slots WHERE active") == 2 ]]; do
    sleep 0.2
done

echo "== pgbench at $tps TPS for $duration s" >&2
docker exec -d -e PGPASSWORD="$pw" "$src" pgbench -U postgres -h /var/run/postgresql -c 2 \
    -R "$tps" -T "$duration" -n b2m
load_start=$(date +%s)
: >"$work/lags"
# The newest time any stored WAL copy covers, as epoch seconds.
covered() {
    "$drctl" --json snapshots 2>/dev/null | python3 -c "
import json, sys, datetime, re
t = [s['wal']['covers_until'] for s in json.load(sys.stdin) if s.get('wal')]
at = lambda x: datetime.datetime.fromisoformat(re.sub(r'(\.\d{6})\d+', r'\1', x).replace('Z', '+00:00'))
print(max(at(x).timestamp() for x in t) if t else 0)"
}
while (($(date +%s) - load_start < duration - 15)); do
    committed=$(now)
    psql_in "$src" b2m "INSERT INTO probes VALUES (clock_timestamp())" >/dev/null
    until python3 -c "import sys; sys.exit(0 if $(covered) >= $committed else 1)"; do
        sleep 0.5
    done
    secs "$committed" "$(now)" >>"$work/lags"
    sleep 10
done
while (($(date +%s) - load_start < duration + 2)); do sleep 1; done
end_lsn=$(psql_in "$src" postgres "SELECT pg_current_wal_lsn()")
target=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 15 # the archive catches up with the last commit
# SIGTERM to drctl itself (its parent is GNU time, which then reports).
pkill -TERM -P "$archive_pid" || true
wait "$archive_pid" || true
archive_pid=
python3 - "$work/lags" <<'EOF'
import statistics, sys
lags = sorted(float(l) for l in open(sys.argv[1]) if l.strip())
p99 = lags[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]
print(f"archive lag over {len(lags)} probes: p50 {statistics.median(lags):.2f} s, "
      f"p99 {p99:.2f} s, max {lags[-1]:.2f} s")
EOF
echo "archive: peak RSS $(rss "$work/time.archive") MB"

# Growth against the same WAL compressed by zstd -3 (the segments the load wrote).
wal_bytes=$(psql_in "$src" postgres "SELECT pg_wal_lsn_diff('$end_lsn', '$start_lsn')::bigint")
docker exec "$src" pkill pg_receivewal || true
zstd_bytes=$(docker exec "$src" sh -c "cd /tmp/ref-wal && tar cf - \$(ls | sort) " | zstd -3 -q -c | wc -c)
repo_after=$(du -sb "$work/repo" | cut -f1)
growth=$((repo_after - repo_before))
printf 'WAL written %s; repository growth %s (%s of the WAL received, zstd -3 %s) = %s\n' \
    "$(mib "$wal_bytes")" "$(mib "$growth")" "$(docker exec "$src" du -sh /tmp/ref-wal | cut -f1)" \
    "$(mib "$zstd_bytes")" "$(ratio "$growth" "$zstd_bytes")"
breakdown
# Superseded growing copies are forgotten as the archive runs; prune removes their data
# (marked first, deleted once the grace has passed).
# The grace is raised to twice the longest backup the snapshots record: wait that out.
"$drctl" --quiet prune --grace 1s >/dev/null
sleep 30
"$drctl" --quiet prune --grace 1s >/dev/null
repo_pruned=$(du -sb "$work/repo" | cut -f1)
breakdown
printf 'after prune: growth %s = %s of zstd -3\n' "$(mib $((repo_pruned - repo_before)))" \
    "$(ratio $((repo_pruned - repo_before)) "$zstd_bytes")"

# RTO: the base backup and all the WAL, replayed to the end of the load, in a drill.
/usr/bin/time -v -o "$work/time.drill" "$drctl" --quiet drill p2m --at "$target" --json >"$work/drill.json"
read -r d_ours replayed < <(python3 -c "
import json
r = json.load(open('$work/drill.json'))[0]
assert r['verdict'] == 'PASS', r
print(f\"{r['rto_secs']:.2f} {r['pitr']['replayed_to']}\")")
python3 -c "
import json
r = json.load(open('$work/drill.json'))[0]
print('drill phases: ' + ', '.join(f\"{p['name']} {p['seconds']:.2f} s\" for p in r['phases']))"
docker exec -e PGUSER=postgres -e PGPASSWORD="$pw" "$src" pg_dump --create --dbname b2m >"$work/b2m.sql"
t0=$(now)
start_pg "$ref"
docker exec -i -e PGUSER=postgres -e PGPASSWORD="$pw" "$ref" \
    psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -d postgres <"$work/b2m.sql" >/dev/null
got=$(psql_in "$ref" b2m "SELECT count(*) FROM pgbench_accounts")
d_plain=$(secs "$t0" "$(now)")
[[ $got == "$rows" ]] || { echo "error: reference load has $got rows" >&2; exit 1; }
printf 'RTO: drill to %s (replayed to %s) %s s (peak RSS %s MB) / start + psql < dump + check %s s = %s\n' \
    "$target" "$replayed" "$d_ours" "$(rss "$work/time.drill")" "$d_plain" "$(ratio "$d_ours" "$d_plain")"
