#!/usr/bin/env bash
# Builds (only when missing) the local Docker image that the integration tests use for
# PostgreSQL 15, MariaDB 10.11 and Redis 7 containers, and prints its tag on stdout.
#
#   scripts/test-images.sh            # -> drctl-test-db:<hash>; logs go to stderr
#
# No registry is needed: the image is a Debian bookworm rootfs made with debootstrap from
# the machine's own Debian mirror and loaded with `docker import`. It has no entrypoint;
# a container runs one of the entry scripts installed in /usr/local/bin, which take their
# credentials from the environment like the official images do:
#
#   drctl-postgres   POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres),
#                    POSTGRES_DB (created on first start), PGDATA
#                    (default /var/lib/postgresql/data)
#   drctl-mariadb    MARIADB_ROOT_PASSWORD or MYSQL_ROOT_PASSWORD (required),
#                    MARIADB_DATABASE or MYSQL_DATABASE (created on first start)
#   drctl-redis      REDIS_PASSWORD (required); data in /data
#
# The tag's hash covers this file and the entry scripts, so changing either builds a new
# image. The rootfs tarball is cached in ${XDG_CACHE_HOME:-~/.cache}/drctl-test/images:
# when only the Docker image is gone, it is re-imported (seconds) instead of rebuilt
# (a few minutes). A lock in that directory keeps concurrent runs from building twice.
#
# Knobs:
#   DRCTL_TEST_MIRROR   Debian mirror for debootstrap (default: the first `URIs:` of
#                       /etc/apt/sources.list.d/debian.sources, else debootstrap's own)
set -euo pipefail

log() { printf '[test-images] %s\n' "$*" >&2; }

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

SUITE=bookworm
REPO=drctl-test-db
# pgbench ships in postgresql-15 itself (postgresql-contrib is only a metapackage over a
# virtual package there, which debootstrap's resolver does not handle).
PACKAGES=(
    postgresql
    mariadb-server
    mariadb-client
    redis-server
    redis-tools
    procps
)
ENTRY_SCRIPTS=(drctl-postgres drctl-mariadb drctl-redis)

# Prints the entry script NAME (installed as /usr/local/bin/NAME in the image).
entry_script() {
    case "$1" in
    drctl-postgres)
        cat <<'EOF'
#!/bin/bash
# PostgreSQL 15 as PID 1, initialised on first start from POSTGRES_* variables.
set -euo pipefail
log() { printf '[drctl-postgres] %s\n' "$*" >&2; }

if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
    log "error: POSTGRES_PASSWORD must be set"
    exit 1
fi
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-}
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
bin=/usr/lib/postgresql/15/bin
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
chmod 2775 /run/postgresql

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    log "initialising $PGDATA"
    pwfile=$(mktemp)
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    # --no-sync: a test database need not survive a power cut, and it saves seconds.
    as_postgres "$bin/initdb" -D "$PGDATA" -U "$user" -A scram-sha-256 --pwfile="$pwfile" \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >&2
    rm -f "$pwfile"
    trap - EXIT
    {
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [[ -n "$db" && "$db" != postgres ]]; then
        log "creating database $db"
        # Single-user mode runs as the bootstrap superuser whatever POSTGRES_USER is.
        printf 'CREATE DATABASE "%s"\n' "${db//\"/\"\"}" |
            as_postgres "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
    fi
fi

log "starting postgres"
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$PGDATA"
EOF
        ;;
    drctl-mariadb)
        cat <<'EOF'
#!/bin/bash
# MariaDB 10.11, initialised on first start from MARIADB_*/MYSQL_* variables. This shell
# stays PID 1 and passes TERM/INT on to mariadbd.
set -euo pipefail
log() { printf '[drctl-mariadb] %s\n' "$*" >&2; }

password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
if [[ -z "$password" ]]; then
    log "error: MARIADB_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD) must be set"
    exit 1
fi
db=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
datadir=/var/lib/mysql
marker=$datadir/.drctl-initialised

pid=""
# shellcheck disable=SC2317  # only reached through the trap
stop() {
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
    else
        exit 143
    fi
}
trap stop TERM INT

mkdir -p "$datadir" /run/mysqld
chown mysql:mysql "$datadir" /run/mysqld

if [[ ! -d "$datadir/mysql" ]]; then
    log "initialising $datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >&2
fi

# Options on the command line go to the server, as in the official image
# (`command: ["--log-bin", "--binlog-format=ROW"]` in compose).
args=(--user=mysql --datadir="$datadir" --bind-address=0.0.0.0 "$@")
initfile=""
if [[ ! -e "$marker" ]]; then
    # The setup runs as the server's --init-file, before it accepts any connection, so
    # nobody sees the server half set up; the password travels in a private file, never
    # on a command line. root may only log in with the password (no unix_socket).
    sql_string() {
        local s=${1//\\/\\\\}
        printf "'%s'" "${s//\'/\\\'}"
    }
    pw=$(sql_string "$password")
    initfile=/run/mysqld/drctl-init.sql
    (
        umask 077
        {
            echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD($pw);"
            echo "CREATE USER IF NOT EXISTS 'root'@'%';"
            echo "ALTER USER 'root'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD($pw);"
            echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
            if [[ -n "$db" ]]; then
                echo "CREATE DATABASE IF NOT EXISTS \`${db//\`/\`\`}\`;"
            fi
        } >"$initfile"
    )
    chown mysql:mysql "$initfile"
    args+=(--init-file="$initfile")
fi

log "starting mariadbd"
mariadbd "${args[@]}" &
pid=$!

# Wait until it answers (ping succeeds even when access is denied).
while ! mariadb-admin --connect-timeout=1 ping >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
if [[ -n "$initfile" ]]; then
    rm -f "$initfile"
    if kill -0 "$pid" 2>/dev/null; then
        touch "$marker"
        log "initialised"
    fi
fi
if kill -0 "$pid" 2>/dev/null; then
    log "ready"
fi

status=0
while :; do
    if wait "$pid"; then
        status=0
    else
        status=$?
    fi
    kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
EOF
        ;;
    drctl-redis)
        cat <<'EOF'
#!/bin/bash
# Redis 7 as PID 1 with a password.
set -euo pipefail
if [[ -z "${REDIS_PASSWORD:-}" ]]; then
    echo "[drctl-redis] error: REDIS_PASSWORD must be set" >&2
    exit 1
fi
mkdir -p /data
exec redis-server --requirepass "$REDIS_PASSWORD" --dir /data --bind 0.0.0.0 \
    --protected-mode no --appendonly no
EOF
        ;;
    *)
        log "error: unknown entry script $1"
        return 1
        ;;
    esac
}

hash=$(
    {
        cat "$self"
        for name in "${ENTRY_SCRIPTS[@]}"; do
            entry_script "$name"
        done
    } | sha256sum
)
hash=${hash:0:12}
tag="$REPO:$hash"

if ! command -v docker >/dev/null 2>&1; then
    log "error: docker not found"
    exit 1
fi
if docker image inspect "$tag" >/dev/null 2>&1; then
    printf '%s\n' "$tag"
    exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/drctl-test/images"
mkdir -p "$cache"
tarball="$cache/$hash.tar"

# Root is needed to build a rootfs (and to read all of it back).
sudo=()
if ((EUID != 0)); then
    sudo=(sudo)
fi

work=""
# shellcheck disable=SC2317  # only reached through the EXIT trap
cleanup() {
    local status=$?
    if [[ -n "$work" && -d "$work" ]]; then
        # debootstrap mounts proc/sys (and in containers binds /dev entries); a failed
        # run may leave them behind, and rm must never descend into them.
        local mnt
        awk -v p="$work/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
            while read -r mnt; do
                "${sudo[@]}" umount -l "$mnt" 2>/dev/null || true
            done
        "${sudo[@]}" rm -rf --one-file-system "$work" || true
    fi
    rm -f "$tarball.partial.$$"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

exec 9>"$cache/lock"
if ! flock -n 9; then
    log "another build holds $cache/lock; waiting for it"
    flock 9
fi
# The run that held the lock may have made the image meanwhile.
if docker image inspect "$tag" >/dev/null 2>&1; then
    printf '%s\n' "$tag"
    exit 0
fi

if [[ ! -s "$tarball" ]]; then
    if ! command -v debootstrap >/dev/null 2>&1 && ! "${sudo[@]}" sh -c 'command -v debootstrap' >/dev/null 2>&1; then
        log "error: debootstrap not found (apt-get install debootstrap)"
        exit 1
    fi
    mirror=${DRCTL_TEST_MIRROR:-}
    if [[ -z "$mirror" && -r /etc/apt/sources.list.d/debian.sources ]]; then
        mirror=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
    fi
    mirror_arg=()
    [[ -n "$mirror" ]] && mirror_arg=("$mirror")

    work=$(mktemp -d "${TMPDIR:-/tmp}/drctl-test-image.XXXXXX")
    root="$work/root"
    blog="$cache/$hash.build.log"
    started=$(date +%s)
    log "building $tag once: debootstrap $SUITE ${mirror:-(default mirror)} (a few minutes; log: $blog)"
    packages=$(
        IFS=,
        echo "${PACKAGES[*]}"
    )
    if ! "${sudo[@]}" debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" \
        "${mirror_arg[@]}" >"$blog" 2>&1; then
        log "error: debootstrap failed; last lines of $blog:"
        tail -n 20 "$blog" >&2
        exit 1
    fi
    log "debootstrap done in $(($(date +%s) - started))s"

    for name in "${ENTRY_SCRIPTS[@]}"; do
        entry_script "$name" | "${sudo[@]}" tee "$root/usr/local/bin/$name" >/dev/null
        "${sudo[@]}" chmod 755 "$root/usr/local/bin/$name"
    done
    # Smaller image: no package caches or docs, and none of the clusters/data directories
    # that the packages' postinst scripts made (the entry scripts make their own).
    # shellcheck disable=SC2016  # expanded by the inner sh
    "${sudo[@]}" sh -c '
        cd "$1" &&
        rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
            usr/share/doc/* usr/share/man/* usr/share/info/* \
            var/lib/postgresql/15 etc/postgresql/15 var/lib/mysql/* var/log/*.log \
            var/log/apt/* var/log/postgresql/* var/log/mysql/*
    ' sh "$root"

    "${sudo[@]}" tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' \
        --exclude='./sys/*' -cf "$tarball.partial.$$" .
    if ((${#sudo[@]})); then
        "${sudo[@]}" chown "$(id -u):$(id -g)" "$tarball.partial.$$"
    fi
    mv "$tarball.partial.$$" "$tarball"
    log "rootfs tarball: $tarball ($(du -h "$tarball" | cut -f1)) after $(($(date +%s) - started))s"
    # Older builds' tarballs are of no more use (the lock is held, so nobody reads them).
    find "$cache" -maxdepth 1 -name '*.tar' ! -name "$hash.tar" -delete
    find "$cache" -maxdepth 1 -name '*.build.log' ! -name "$hash.build.log" -delete
fi

log "importing $tarball as $tag"
docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL drctl-test=1" \
    --message "drctl test databases (scripts/test-images.sh)" \
    "$tarball" "$tag" >/dev/null
# Images of older versions of this script go too, unless a container still uses them.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO" | while read -r old; do
    if [[ "$old" != "$tag" ]] && docker image rm "$old" >/dev/null 2>&1; then
        log "removed the outdated image $old"
    fi
done
printf '%s\n' "$tag"
