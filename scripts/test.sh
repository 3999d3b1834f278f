#!/usr/bin/env bash
# The project's one test command: starts a throwaway Garage S3 server, runs the whole test
# suite against it, and always stops the server again (normal exit, failure, Ctrl-C, TERM).
#
#   scripts/test.sh                  # everything
#   scripts/test.sh store_s3         # extra arguments go to the test runner (a filter here)
#   DRCTL_TEST_NO_S3=1 scripts/test.sh   # no Garage; the S3 tests skip themselves
#
# Runner: cargo-nextest when installed (one process per test, so a test that changes the
# process environment cannot disturb another); otherwise plain `cargo test`.
# DRCTL_TEST_RUNNER=cargo forces the fallback.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

# PID of the running test runner, so that a signal can be passed on to it.
runner_pid=""
# Which signal ended us, if any: decides how the runner is stopped.
caught=""

# shellcheck disable=SC2317  # only reached through the EXIT trap
cleanup() {
    local status=$? i
    if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
        if [[ "$caught" == INT ]]; then
            # A terminal's Ctrl-C reached the runner too, and nextest is winding down its
            # tests; a TERM right now would count as a second signal and cut that short.
            for ((i = 0; i < 100; i++)); do
                kill -0 "$runner_pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        kill -TERM "$runner_pid" 2>/dev/null || true
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
    log "cargo-nextest not available; falling back to cargo test"
    # Note: cargo test runs the tests of one binary as threads of a single process.
    cmd=(cargo test --workspace --no-fail-fast "$@")
fi
log "running: ${cmd[*]}"

# The runner runs in the background and we `wait` for it: bash only handles a trapped
# signal after a foreground child has finished, which would keep Garage (and the tests)
# alive after a SIGTERM sent to this script alone. On a signal the EXIT trap stops the
# runner (nextest then stops its tests), waits for it, and stops Garage.
# `trap - INT QUIT` undoes bash's habit of making background jobs of a script ignore
# those signals, so that a Ctrl-C still reaches the runner like a foreground command.
set +e
(
    trap - INT QUIT
    exec "${cmd[@]}"
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
