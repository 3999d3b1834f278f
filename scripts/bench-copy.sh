#!/usr/bin/env bash
# `drctl copy` against `rclone copy` (Debian's rclone) between two Garage buckets on
# loopback, each with its own key, on the benchmark repository (issue 15, point 6).
# Not part of the test suite.
#
#   scripts/bench-copy.sh [RUNS]     # default 3; uses target/release/drctl
#
# The source repository is a drctl backup of ../shared/bench/gen-data.py's data set
# (generated once under /tmp/drctl-bench-data). Each run copies it whole into a fresh
# prefix of the second bucket with each tool (alternating which goes first), then runs
# `drctl copy` again with nothing new (a listing only). Both tools run with their
# defaults: 4 objects in flight (`--jobs 4`, rclone's `--transfers 4`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-3}
drctl=$PWD/target/release/drctl
command -v rclone >/dev/null || { apt-get install -y -qq rclone >/dev/null; }
data=/tmp/drctl-bench-data
[[ -d $data/data ]] || python3 ../shared/bench/gen-data.py "$data" >&2

work=$(mktemp -d /tmp/drctl-bench-copy.XXXXXX)
. scripts/garage-env.sh -
garage_start
trap 'garage_stop; rm -rf "$work"' EXIT
ep=$DRCTL_TEST_S3_ENDPOINT
garage() { "$DRCTL_TEST_GARAGE_BIN" -c "$DRCTL_TEST_GARAGE_CONF" "$@"; }

# The second bucket and its own key.
garage bucket create offsite >/dev/null
out=$(garage key create offsite-key)
off_id=$(sed -n 's/^Key ID:[[:space:]]*//p' <<<"$out")
off_secret=$(sed -n 's/^Secret key:[[:space:]]*//p' <<<"$out")
garage bucket allow --read --write --owner offsite --key offsite-key >/dev/null
cat >"$work/credentials" <<EOF
[offsite]
aws_access_key_id = $off_id
aws_secret_access_key = $off_secret
EOF
export AWS_SHARED_CREDENTIALS_FILE=$work/credentials AWS_CONFIG_FILE=$work/none

D=("$drctl" --quiet --config "$work/drctl.toml" --key-file "$work/key" --catalog "$work/cat.db")
echo "== backing up $(du -sh "$data/data" | cut -f1) into s3://$DRCTL_TEST_S3_BUCKET/repo" >&2
cat >"$work/drctl.toml" <<EOF
[repository]
url = "s3://$DRCTL_TEST_S3_BUCKET/repo"
endpoint = "$ep"
region = "$DRCTL_TEST_S3_REGION"
path_style = true
EOF
"${D[@]}" init >/dev/null
"${D[@]}" backup --stack bench "$data/data"
export RCLONE_CONFIG_SRC_TYPE=s3 RCLONE_CONFIG_SRC_PROVIDER=Other RCLONE_CONFIG_SRC_ENDPOINT=$ep \
    RCLONE_CONFIG_SRC_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
    RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    RCLONE_CONFIG_SRC_REGION=$DRCTL_TEST_S3_REGION \
    RCLONE_CONFIG_DST_TYPE=s3 RCLONE_CONFIG_DST_PROVIDER=Other RCLONE_CONFIG_DST_ENDPOINT=$ep \
    RCLONE_CONFIG_DST_ACCESS_KEY_ID=$off_id RCLONE_CONFIG_DST_SECRET_ACCESS_KEY=$off_secret \
    RCLONE_CONFIG_DST_REGION=$DRCTL_TEST_S3_REGION
rc() { env -u AWS_CONFIG_FILE -u AWS_SHARED_CREDENTIALS_FILE -u AWS_CA_BUNDLE rclone --config /dev/null "$@"; }
objects=$(rc lsf -R --files-only "src:$DRCTL_TEST_S3_BUCKET/repo" | wc -l)
bytes=$(rc size --json "src:$DRCTL_TEST_S3_BUCKET/repo" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
echo "repository: $objects objects, $bytes bytes" >&2

now() { date +%s.%N; }
: >"$work/times"
for ((r = 1; r <= runs; r++)); do
    cat >>"$work/drctl.toml" <<EOF
[remotes.copy$r]
url = "s3://offsite/drctl-$r"
endpoint = "$ep"
region = "$DRCTL_TEST_S3_REGION"
path_style = true
profile = "offsite"
EOF
    run_drctl() {
        local t0
        t0=$(now)
        /usr/bin/time -f "%M" -o "$work/rss" "${D[@]}" copy ${JOBS:+--jobs $JOBS} --to "copy$r"
        d=$(python3 -c "print($(now) - $t0)")
        rss=$(($(cat "$work/rss") / 1024))
    }
    run_rclone() {
        local t0
        t0=$(now)
        rc copy ${JOBS:+--transfers $JOBS} "src:$DRCTL_TEST_S3_BUCKET/repo" "dst:offsite/rclone-$r"
        c=$(python3 -c "print($(now) - $t0)")
    }
    sync
    if ((r % 2)); then run_drctl; run_rclone; else run_rclone; run_drctl; fi
    t0=$(now)
    "${D[@]}" copy --to "copy$r"
    again=$(python3 -c "print($(now) - $t0)")
    printf 'run %d: drctl copy %.2f s (peak RSS %d MB), rclone copy %.2f s = %.3f; again with nothing new %.2f s\n' \
        "$r" "$d" "$rss" "$c" "$(python3 -c "print($d / $c)")" "$again"
    echo "$d $c" >>"$work/times"
done
python3 scripts/medians.py "$work/times" copy "drctl copy" "rclone copy"
