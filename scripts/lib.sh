# shellcheck shell=bash
# Shared helpers for scripts/services.sh, scripts/test.sh and .ci/run.
# Source it; it defines functions and a few variables, and runs nothing else.
# shellcheck disable=SC2034 # variables used by the scripts that source this file

SLUICE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${HOME:=$(cd ~ && pwd)}" # some CI runners start without HOME

# Rust installed through rustup lives here; non-login shells (CI) often lack it in PATH.
if [[ -d "${CARGO_HOME:-$HOME/.cargo}/bin" && ":$PATH:" != *":${CARGO_HOME:-$HOME/.cargo}/bin:"* ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

# Debian packages the Rust crates need to build (rdkafka's bundled librdkafka: ./configure + make,
# libz-sys: zlib via pkg-config, zstd-sys / libsql: cc).
SLUICE_BUILD_PACKAGES=(build-essential pkg-config zlib1g-dev libssl-dev python3)
# Debian packages the test services need.
SLUICE_SERVICE_PACKAGES=(mariadb-server mariadb-client)
# Debian packages some tests use when present, and say SKIP without (headless Chromium renders
# the status page for a screenshot check). scripts/test.sh installs them, but a failure to do so
# does not stop the run.
SLUICE_OPTIONAL_TEST_PACKAGES=(chromium)

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root (directly when we are root, otherwise through sudo).
as_root() {
    if [[ ${EUID:-$(id -u)} -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$1' (run as root or install sudo)"
    fi
}

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

_SLUICE_APT_UPDATED=0

# ensure_packages [PKG...]: install the build prerequisites plus any PKG given, with apt-get,
# only when something is missing. While installing, a policy-rc.d keeps apt from starting system
# services (e.g. the system MariaDB on port 3306); an existing policy-rc.d is left untouched.
ensure_packages() {
    local pkg missing=()
    for pkg in "${SLUICE_BUILD_PACKAGES[@]}" "$@"; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0

    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages (${missing[*]}) and no apt-get: install them by hand"
    log "installing Debian packages: ${missing[*]}"

    local policy=/usr/sbin/policy-rc.d marker='# sluice: temporary, deny service starts' ours=0
    if [[ ! -e $policy ]] || grep -qF "$marker" "$policy" 2>/dev/null; then
        printf '#!/bin/sh\n%s\nexit 101\n' "$marker" | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        ours=1
    fi

    local rc=0 apt_opts=(-y -q -o DPkg::Lock::Timeout=600)
    if [[ $_SLUICE_APT_UPDATED -eq 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >&2 || rc=$?
        [[ $rc -eq 0 ]] && _SLUICE_APT_UPDATED=1
    fi
    if [[ $rc -eq 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" \
            --no-install-recommends "${missing[@]}" >&2 || rc=$?
    fi
    [[ $ours -eq 1 ]] && as_root rm -f "$policy"
    [[ $rc -eq 0 ]] ||
        die "apt-get failed to install ${missing[*]} (exit $rc): check network access to the Debian mirror and /etc/apt/sources.list*"
}

# need_cargo: fail clearly when no Rust toolchain is available.
need_cargo() {
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found: install Rust >= 1.85 (https://rustup.rs) and put ~/.cargo/bin in PATH"
}

# Process and port helpers shared by services.sh and mysql.sh.

port_open() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# proc_live PID: the process exists and is not a zombie (`kill -0` succeeds on zombies, and
# exited daemons can stay zombies for a while, until their parent or init reaps them).
proc_live() {
    local st
    st="$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# pid_alive PIDFILE COMM: print the pid if PIDFILE names a live process called COMM.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid="$(<"$1")"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2" ]] || return 1
    proc_live "$pid" || return 1
    printf '%s\n' "$pid"
}

# wait_gone NAME PID WAIT_SECONDS: wait for a TERMed process, KILL it after WAIT_SECONDS.
wait_gone() {
    local name=$1 pid=$2 i
    for ((i = 0; i < $3 * 10; i++)); do
        proc_live "$pid" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) did not stop within $3 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        proc_live "$pid" || return 0
        sleep 0.1
    done
    die "could not stop $name (pid $pid): kill it by hand"
}

tail_of() {
    if [[ -f $1 ]]; then tail -n "${2:-25}" "$1" | sed 's/^/    /' >&2; fi
}
