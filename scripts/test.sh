#!/usr/bin/env bash
# The project's one test command: starts a throwaway Garage S3 server, runs the whole test
# suite against it, and always stops the server again (normal exit, failure, Ctrl-C, TERM).
#
#   scripts/test.sh                  # everything
#   scripts/test.sh chunker          # extra arguments go to the test runner (a name filter)
#   DRCTL_TEST_NO_S3=1 scripts/test.sh   # no Garage; the S3 tests skip themselves
#   DRCTL_TEST_NO_SETUP=1 scripts/test.sh  # skip scripts/setup.sh (installs what is missing)
#
# Runner: cargo-nextest when installed (one process per test, so a test that changes the
# process environment cannot disturb another); otherwise plain `cargo test`.
# DRCTL_TEST_RUNNER=cargo forces the fallback.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

# PID of the running test runner; it leads its own process group (see below).
runner_pid=""
# Which signal ended us, if any; it is passed on to the runner.
caught=""

# shellcheck disable=SC2317  # only reached through the EXIT trap
cleanup() {
    local status=$?
    if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
        # From here on a second Ctrl-C kills the tests outright, but Garage is still stopped.
        trap 'kill -KILL -- "-$runner_pid" 2>/dev/null' INT TERM HUP
        # INT lets nextest wind its tests down; TERM to the whole group also ends the test
        # binaries of `cargo test`, which cargo itself would leave running.
        local sig=TERM
        [[ "$caught" == INT ]] && sig=INT
        kill "-$sig" -- "-$runner_pid" 2>/dev/null || kill "-$sig" "$runner_pid" 2>/dev/null || true
        wait "$runner_pid" 2>/dev/null || true
    fi
    if declare -F garage_stop >/dev/null; then
        garage_stop || true
    fi
    exit "$status"
}
trap cleanup EXIT
# Exit codes follow the shell convention 128+signal; the EXIT trap does the cleanup.
trap 'caught=INT; exit 130' INT
trap 'caught=TERM; exit 143' TERM
trap 'caught=HUP; exit 129' HUP

# Everything the suite needs, installed where missing (a no-op on a prepared machine).
if [[ "${DRCTL_TEST_NO_SETUP:-}" != "1" ]]; then
    scripts/setup.sh
fi

if [[ "${DRCTL_TEST_NO_S3:-}" == "1" ]]; then
    log "DRCTL_TEST_NO_S3=1: not starting Garage; S3 tests will be skipped"
else
    # shellcheck source=scripts/garage-env.sh
    # The `-` keeps our own arguments from being passed on to the sourced file.
    . scripts/garage-env.sh -
    garage_start
fi

if [[ "${DRCTL_TEST_RUNNER:-}" != "cargo" ]] && cargo nextest --version >/dev/null 2>&1; then
    cmd=(cargo nextest run --workspace --all-targets --no-fail-fast "$@")
else
    [[ "${DRCTL_TEST_RUNNER:-}" == "cargo" ]] || log "cargo-nextest not available; using cargo test"
    # Note: cargo test runs the tests of one binary as threads of a single process.
    cmd=(cargo test --workspace --no-fail-fast "$@")
fi
log "running: ${cmd[*]}"

# The runner runs in the background and we `wait` for it: bash only handles a trapped
# signal after a foreground child has finished, which would keep Garage (and the tests)
# alive after a SIGTERM sent to this script alone. It gets a process group of its own
# (setsid execs in place: a background job of a script is no group leader, so $! stays
# right) so that the EXIT trap can signal all of it, and so that a terminal's Ctrl-C
# reaches it exactly once, from us, rather than twice (nextest takes a second signal as
# "kill the tests now"). `trap -` undoes bash's habit of making background jobs of a
# script ignore INT and QUIT.
launcher=()
if command -v setsid >/dev/null 2>&1; then
    launcher=(setsid)
fi
set +e
(
    trap - INT QUIT
    exec "${launcher[@]}" "${cmd[@]}"
) &
runner_pid=$!
wait "$runner_pid"
status=$?
runner_pid=""
set -e

if ((status == 0)); then
    log "tests passed"
else
    log "tests failed (exit $status)"
fi
exit "$status"
