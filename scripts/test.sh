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
# In a subshell: ensure_packages exits on failure, and these are optional.
(ensure_packages "${SLUICE_OPTIONAL_TEST_PACKAGES[@]}") ||
    log "WARNING: could not install ${SLUICE_OPTIONAL_TEST_PACKAGES[*]}; the tests that need them will say SKIP"
need_cargo

keep="${SLUICE_KEEP_SERVICES:-0}"
if [[ $keep != 1 ]] && scripts/services.sh status >/dev/null 2>&1; then
    log "test services were already running: leaving them up afterwards"
    keep=1
fi
mysql_keep="${SLUICE_KEEP_SERVICES:-0}"
if [[ $mysql_keep != 1 ]] && scripts/mysql.sh status >/dev/null 2>&1; then
    mysql_keep=1
fi
stop_services() {
    if [[ $keep != 1 ]]; then
        scripts/services.sh down || log "warning: scripts/services.sh down failed"
    fi
    if [[ $mysql_keep != 1 ]]; then
        scripts/mysql.sh down >/dev/null 2>&1 || true
    fi
}
trap stop_services EXIT

scripts/services.sh up
eval "$(scripts/services.sh env)"
# Real Oracle MySQL runs here from a Debian sid chroot; where it cannot be installed, the
# MySQL-only tests say SKIP and the rest still run.
if [[ ${SLUICE_SKIP_MYSQL:-0} != 1 ]] && scripts/mysql.sh up; then
    eval "$(scripts/mysql.sh env)"
else
    log "WARNING: real MySQL is not available; MySQL tests will be skipped"
fi

# The initial-load tests copy a table of this many rows under concurrent writes (and kill -9
# sluice in the middle of it).
export SLUICE_LOAD_ROWS="${SLUICE_LOAD_ROWS:-2000000}"

rc=0
cargo test --workspace --release --no-fail-fast -- --test-threads=2 "$@" || rc=$?
exit "$rc"
