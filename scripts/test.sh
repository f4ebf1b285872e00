#!/usr/bin/env bash
# The project's test command: installs what is missing, starts the test services (MariaDB and a
# Kafka-protocol broker, see scripts/services.sh), runs the whole workspace's tests against them.
#
# usage: scripts/test.sh [TEST-HARNESS-ARGS...]   e.g. scripts/test.sh some_test_name
# The services are stopped (and their data removed) at exit, unless SLUICE_KEEP_SERVICES=1 or
# they were already running before this script started. Exit status: cargo test's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_packages "${SLUICE_SERVICE_PACKAGES[@]}"
need_cargo

keep="${SLUICE_KEEP_SERVICES:-0}"
if [[ $keep != 1 ]] && scripts/services.sh status >/dev/null 2>&1; then
    log "test services were already running: leaving them up afterwards"
    keep=1
fi
if [[ $keep != 1 ]]; then
    trap 'scripts/services.sh down || log "warning: scripts/services.sh down failed"' EXIT
fi

scripts/services.sh up
eval "$(scripts/services.sh env)"

rc=0
cargo test --workspace --release -- --test-threads=2 "$@" || rc=$?
exit "$rc"
