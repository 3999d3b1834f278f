#!/usr/bin/env bash
# Throwaway single-node Garage (S3-compatible server) for drctl's integration tests.
#
# Two ways to use it:
#
#   Sourced (what scripts/test.sh does) -- the variables land in the calling shell:
#       . scripts/garage-env.sh -         # only defines the functions below
#       trap garage_stop EXIT
#       garage_start                      # or: . scripts/garage-env.sh start
#       ...
#       garage_stop                       # idempotent
#   (Pass an argument when sourcing from a script: with none, `.` passes on the script's
#   own arguments, and a first argument `start` would start Garage.)
#
#   Executed -- for an interactive shell or another tool; the server keeps running
#   after the script returns and `start` prints `export` lines on stdout:
#       eval "$(scripts/garage-env.sh start)"
#       scripts/garage-env.sh stop        # uses $DRCTL_TEST_GARAGE_DIR, or pass the dir
#       scripts/garage-env.sh bin         # build/locate the garage binary, print its path
#
# Exported by garage_start:
#   DRCTL_TEST_S3_ENDPOINT  DRCTL_TEST_S3_BUCKET  DRCTL_TEST_S3_REGION
#   AWS_ACCESS_KEY_ID  AWS_SECRET_ACCESS_KEY  AWS_REGION
#   DRCTL_TEST_GARAGE_CONF  DRCTL_TEST_GARAGE_BIN  DRCTL_TEST_GARAGE_DIR
#
# Knobs:
#   DRCTL_GARAGE_BIN          use this garage binary instead of the cached build
#   DRCTL_TEST_CACHE          cache dir for the build (default ~/.cache/drctl-test)
#   DRCTL_TEST_GARAGE_TIMEOUT seconds to wait for the server (default 30)
#   DRCTL_TEST_GARAGE_LOG     RUST_LOG for the server, logged to $DRCTL_TEST_GARAGE_DIR/garage.log
#                             (default warn; the directory goes away on stop)
#
# The functions avoid relying on the caller's `set -e`/`set -u` state: every failure is
# checked explicitly and reported, because this file runs inside other people's shells.

# Pinned so that CLI syntax and output (parsed below) cannot drift under us.
DRCTL_GARAGE_VERSION=2.5.0
DRCTL_GARAGE_REGION=garage
DRCTL_GARAGE_BUCKET=drctl-test
DRCTL_GARAGE_KEY_NAME=drctl-test-key

_garage_log() { printf '[garage-env] %s\n' "$*" >&2; }

# Locate or build the garage binary and print its path. The build takes 10-15 minutes,
# so it goes to a per-user cache that survives between runs and CI jobs.
garage_ensure_bin() {
    if [[ -n "${DRCTL_GARAGE_BIN:-}" ]]; then
        if ! "$DRCTL_GARAGE_BIN" --version >/dev/null 2>&1; then
            _garage_log "error: DRCTL_GARAGE_BIN=$DRCTL_GARAGE_BIN does not run (--version failed)"
            return 1
        fi
        printf '%s\n' "$DRCTL_GARAGE_BIN"
        return 0
    fi

    local cache="${DRCTL_TEST_CACHE:-$HOME/.cache/drctl-test}"
    local root="$cache/garage-install"
    local bin="$root/bin/garage"
    if "$bin" --version >/dev/null 2>&1; then
        printf '%s\n' "$bin"
        return 0
    fi

    if ! command -v cargo >/dev/null 2>&1; then
        _garage_log "error: no garage binary at $bin and no cargo to build it (or set DRCTL_GARAGE_BIN)"
        return 1
    fi
    mkdir -p "$cache" || return 1
    local log="$cache/garage-build.log"
    # Two test runs starting at once must not both run `cargo install` into the same root;
    # the second one waits for the first and then finds the binary.
    (
        if command -v flock >/dev/null 2>&1; then
            exec 9>"$cache/garage-install.lock"
            if ! flock -n 9; then
                _garage_log "another garage build holds $cache/garage-install.lock; waiting for it"
                flock 9
            fi
        fi
        if "$bin" --version >/dev/null 2>&1; then
            exit 0
        fi
        _garage_log "building garage $DRCTL_GARAGE_VERSION once into $root (10-15 min; log: $log)"
        if ! cargo install --locked garage --version "$DRCTL_GARAGE_VERSION" --root "$root" \
            >"$log" 2>&1; then
            _garage_log "error: building garage failed; last lines of $log:"
            tail -n 20 "$log" >&2
            exit 1
        fi
    ) || return 1
    if ! "$bin" --version >/dev/null 2>&1; then
        _garage_log "error: $bin still does not run after the build"
        return 1
    fi
    printf '%s\n' "$bin"
}

# Print N distinct free TCP ports on 127.0.0.1. Binding them all at once before closing
# guarantees they differ; the small window before Garage binds them is covered by the
# retry in garage_start.
_garage_free_ports() {
    local n="$1"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
        return
    fi
    # No python3: probe random high ports; a refused connection means nothing listens there.
    local ports=() p
    while ((${#ports[@]} < n)); do
        p=$((20000 + RANDOM % 40000))
        [[ " ${ports[*]} " == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            ports+=("$p")
        fi
    done
    echo "${ports[*]}"
}

_garage_random_hex() {
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex "$1"
    else
        od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
        echo
    fi
}

# True if PID is alive and is a garage process (guards against a recycled PID).
_garage_pid_is_ours() {
    local pid="$1"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q garage
}

# The garage CLI, pointed at the test server.
_garage_cli() {
    "$DRCTL_TEST_GARAGE_BIN" -c "$DRCTL_TEST_GARAGE_CONF" "$@"
}

# Start the server, wait for it, set up the bucket and key, export the variables.
garage_start() {
    if [[ -n "${DRCTL_TEST_GARAGE_DIR:-}" && -d "${DRCTL_TEST_GARAGE_DIR}" ]]; then
        _garage_log "error: a test Garage is already running from $DRCTL_TEST_GARAGE_DIR (garage_stop first)"
        return 1
    fi
    local bin
    bin="$(garage_ensure_bin)" || return 1

    local t0 dir
    t0=$(date +%s%N)
    dir="$(mktemp -d "${TMPDIR:-/tmp}/drctl-garage.XXXXXX")" || return 1
    # garage_stop deletes only directories carrying this marker.
    : >"$dir/.drctl-garage-env"
    export DRCTL_TEST_GARAGE_DIR="$dir"
    export DRCTL_TEST_GARAGE_BIN="$bin"
    export DRCTL_TEST_GARAGE_CONF="$dir/garage.toml"

    local timeout="${DRCTL_TEST_GARAGE_TIMEOUT:-30}"
    local attempt ports rpc_port s3_port admin_port pid ready deadline
    for attempt in 1 2 3; do
        ports="$(_garage_free_ports 3)" || { garage_stop; return 1; }
        read -r rpc_port s3_port admin_port <<<"$ports"
        # Mode 600: the file holds the RPC secret and admin token.
        (
            umask 077
            cat >"$DRCTL_TEST_GARAGE_CONF" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(_garage_random_hex 32)"

[s3_api]
s3_region = "$DRCTL_GARAGE_REGION"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$(_garage_random_hex 32)"
EOF
        ) || { garage_stop; return 1; }

        _garage_log "starting Garage on 127.0.0.1:$s3_port (rpc $rpc_port, admin $admin_port, dir $dir) ..."
        # Without job control (inside scripts), a background job shares the script's process
        # group, so a Ctrl-C would hit Garage directly and kill it mid-setup or while the
        # tests still shut down; its own session leaves stopping it to garage_stop. Here
        # the job is no group leader, so setsid execs in place and $! stays Garage's PID.
        local detach=()
        if [[ $- != *m* ]] && command -v setsid >/dev/null 2>&1; then
            detach=(setsid)
        fi
        # stdin/stdout detached so that `eval "$(garage-env.sh start)"` does not wait for it.
        RUST_LOG="${DRCTL_TEST_GARAGE_LOG:-warn}" "${detach[@]}" \
            "$bin" -c "$DRCTL_TEST_GARAGE_CONF" server </dev/null >"$dir/garage.log" 2>&1 &
        pid=$!
        echo "$pid" >"$dir/garage.pid"

        ready=0
        deadline=$(($(date +%s) + timeout))
        while (($(date +%s) < deadline)); do
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            # The binary is called directly, not via _garage_cli: a redirection on a function
            # call stays active in the shell while it runs, so a Ctrl-C trap firing here
            # would run with stderr sent to /dev/null.
            if "$bin" -c "$DRCTL_TEST_GARAGE_CONF" status >/dev/null 2>&1; then
                ready=1
                break
            fi
            sleep 0.2
        done
        ((ready)) && break

        if ! kill -0 "$pid" 2>/dev/null && grep -qi 'address already in use' "$dir/garage.log"; then
            # Someone took one of our ports between probing and binding: try new ones.
            _garage_log "a port was taken meanwhile (attempt $attempt); retrying with new ports"
            continue
        fi
        if kill -0 "$pid" 2>/dev/null; then
            _garage_log "error: Garage did not answer within ${timeout}s; last lines of $dir/garage.log:"
        else
            _garage_log "error: Garage exited during startup; last lines of $dir/garage.log:"
        fi
        tail -n 20 "$dir/garage.log" >&2
        garage_stop
        return 1
    done
    if ((!ready)); then
        _garage_log "error: could not find free ports for Garage after 3 attempts"
        garage_stop
        return 1
    fi

    local out key_id secret
    if ! out="$(_garage_setup 2>&1)"; then
        _garage_log "error: setting up the Garage layout/bucket/key failed:"
        printf '%s\n' "$out" >&2
        garage_stop
        return 1
    fi
    key_id="$(printf '%s\n' "$out" | sed -n 's/^Key ID:[[:space:]]*//p' | head -n1)"
    secret="$(printf '%s\n' "$out" | sed -n 's/^Secret key:[[:space:]]*//p' | head -n1)"
    if [[ -z "$key_id" || -z "$secret" ]]; then
        _garage_log "error: could not parse the key out of 'garage key create':"
        printf '%s\n' "$out" >&2
        garage_stop
        return 1
    fi

    export DRCTL_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
    export DRCTL_TEST_S3_BUCKET="$DRCTL_GARAGE_BUCKET"
    export DRCTL_TEST_S3_REGION="$DRCTL_GARAGE_REGION"
    export AWS_ACCESS_KEY_ID="$key_id"
    export AWS_SECRET_ACCESS_KEY="$secret"
    export AWS_REGION="$DRCTL_GARAGE_REGION"
    # A developer's real session token or profile would otherwise be mixed with the test key.
    unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE

    local ms=$((($(date +%s%N) - t0) / 1000000))
    _garage_log "Garage ready at $DRCTL_TEST_S3_ENDPOINT, bucket $DRCTL_TEST_S3_BUCKET ($((ms / 1000)).$(printf '%03d' $((ms % 1000)))s)"
}

# Layout, bucket, key, grant. Prints the `key create` output for the caller to parse.
_garage_setup() {
    local node_id
    node_id="$(_garage_cli node id -q)" || return 1
    node_id="${node_id%%@*}"
    _garage_cli layout assign -z dc1 -c 1G "$node_id" >/dev/null || return 1
    _garage_cli layout apply --version 1 >/dev/null || return 1
    _garage_cli bucket create "$DRCTL_GARAGE_BUCKET" >/dev/null || return 1
    _garage_cli key create "$DRCTL_GARAGE_KEY_NAME" || return 1
    # Lets tests create extra buckets through S3 itself, not only through the admin CLI.
    _garage_cli key allow --create-bucket "$DRCTL_GARAGE_KEY_NAME" >/dev/null || return 1
    _garage_cli bucket allow --read --write --owner "$DRCTL_GARAGE_BUCKET" \
        --key "$DRCTL_GARAGE_KEY_NAME" >/dev/null || return 1
}

# Stop the server and delete its directory. Safe to call twice, or with nothing running.
# Optional argument: the directory (defaults to $DRCTL_TEST_GARAGE_DIR).
garage_stop() {
    local dir="${1:-${DRCTL_TEST_GARAGE_DIR:-}}"
    if [[ -n "$dir" && -d "$dir" ]]; then
        if [[ ! -e "$dir/.drctl-garage-env" ]]; then
            _garage_log "error: $dir was not made by garage-env.sh; not touching it"
            return 1
        fi
        local pid="" i
        if [[ -r "$dir/garage.pid" ]]; then pid="$(cat "$dir/garage.pid")"; fi
        if _garage_pid_is_ours "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            # Garage exits promptly on SIGTERM; KILL only if it hangs.
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                _garage_log "Garage (pid $pid) ignored SIGTERM; killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            # Reap it if it is our child, so no zombie is left behind.
            wait "$pid" 2>/dev/null || true
            _garage_log "Garage stopped"
        fi
        rm -rf -- "$dir"
    fi
    # Only forget the variables when stopping our own instance, not one named by argument.
    if [[ -z "${1:-}" || "${1:-}" == "${DRCTL_TEST_GARAGE_DIR:-}" ]]; then
        unset DRCTL_TEST_GARAGE_DIR DRCTL_TEST_GARAGE_CONF DRCTL_TEST_GARAGE_BIN \
            DRCTL_TEST_S3_ENDPOINT DRCTL_TEST_S3_BUCKET DRCTL_TEST_S3_REGION \
            AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
    fi
    return 0
}

_garage_usage() {
    cat >&2 <<'EOF'
usage: scripts/garage-env.sh start       start Garage, print `export` lines (use with eval)
       scripts/garage-env.sh stop [DIR]  stop it (DIR defaults to $DRCTL_TEST_GARAGE_DIR)
       scripts/garage-env.sh bin         build/locate the garage binary, print its path
   or: . scripts/garage-env.sh -|start   define garage_start/garage_stop here [and start]
EOF
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced. Without arguments of its own, `.` hands over the caller's positional
    # parameters, so anything but `start` just means "define the functions".
    if [[ "${1:-}" == start ]]; then
        garage_start
    fi
else
    # Executed.
    set -uo pipefail
    case "${1:-}" in
        start)
            garage_start || exit 1
            for _v in DRCTL_TEST_S3_ENDPOINT DRCTL_TEST_S3_BUCKET DRCTL_TEST_S3_REGION \
                AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION \
                DRCTL_TEST_GARAGE_CONF DRCTL_TEST_GARAGE_BIN DRCTL_TEST_GARAGE_DIR; do
                printf 'export %s=%q\n' "$_v" "${!_v}"
            done
            printf 'unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE\n'
            ;;
        stop) garage_stop "${2:-}" ;;
        bin) garage_ensure_bin ;;
        *) _garage_usage; exit 2 ;;
    esac
fi
