# Shared by the database benchmarks (bench-db.sh, bench-pitr.sh): sourced from the
# project root after `set -euo pipefail`. Needs target/release/drctl and GNU time; gives
# the test image, the PostgreSQL password, timing helpers and containers of that image.

drctl=$PWD/target/release/drctl
[[ -x $drctl ]] || { echo "error: $drctl missing; run cargo build --release" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "error: GNU time missing (apt-get install time)" >&2; exit 2; }

image=$(scripts/test-images.sh)
pw=bench-pw
export POSTGRES_PASSWORD=$pw

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
rss() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$1"; }

start_pg() { # NAME -> waits until it answers
    docker rm -f -v "$1" >/dev/null 2>&1 || true
    docker run -d --name "$1" --stop-signal SIGINT -e POSTGRES_PASSWORD "$image" drctl-postgres >/dev/null
    until docker exec -e PGPASSWORD="$pw" "$1" psql -qAt -U postgres -h 127.0.0.1 -c 'SELECT 1' >/dev/null 2>&1; do
        sleep 0.1
    done
}
psql_in() { # NAME DB SQL
    docker exec -e PGPASSWORD="$pw" "$1" psql -qAt -U postgres -h 127.0.0.1 -d "$2" -c "$3"
}

write_config() { # WORKDIR -> $WORKDIR/etc/drctl.toml over a local repository there
    mkdir -p "$1/etc/schedules" "$1/etc/restore-drills"
    cat >"$1/etc/drctl.toml" <<CONF
[repository]
url = "file://$1/repo"
key_file = "$1/drctl.key"
catalog = "$1/catalog.db"
CONF
}

write_count_drill() { # WORKDIR ROWS [DATABASE] -> drill p2m checking pgbench_accounts' rows
    {
        printf '[drill.p2m]\nstack = "p2m"\n[[drill.p2m.check]]\nsource = "db"\n'
        if [[ -n ${3:-} ]]; then printf 'database = "%s"\n' "$3"; fi
        printf 'sql = "SELECT count(*) FROM pgbench_accounts"\nexpect = "= %s"\n' "$2"
    } >"$1/etc/restore-drills/bench.toml"
}

init_repo() { # WORKDIR -> DRCTL_CONFIG exported, repository created
    export DRCTL_CONFIG=$1/etc/drctl.toml
    "$drctl" --quiet init >/dev/null
}
