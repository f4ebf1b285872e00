#!/usr/bin/env bash
# Real Oracle MySQL (Debian unstable's mysql-server-core, MySQL 9.x) as a test service for sluice,
# private to this checkout and bound to 127.0.0.1 only, with a ROW/FULL/FULL binlog and GTIDs on.
#
# Debian 12 ships no MySQL server, so MySQL runs from a Debian "sid" chroot built once with
# debootstrap (~70 s, ~500 MB) and cached. mysqld runs chrooted in a private mount namespace
# (unshare) in which the state directory is bound to /sluice: nothing is ever mounted on the host.
#
# usage: scripts/mysql.sh up|down|status|env
#   up      build the chroot if it is not cached, start mysqld (a no-op when it already runs).
#           Fails fast, exit status 1, with the reason on the last line of stderr ("error: ..."),
#           e.g. when the Debian mirror cannot be reached: callers may then skip MySQL tests.
#   down    stop mysqld and delete its data (the cached chroot stays)
#   status  one line; exit status 0 only when mysqld runs and listens
#   env     print `export` lines with the connection settings: eval "$(scripts/mysql.sh env)"
#
# Settings (environment):
#   SLUICE_MYSQL_PORT          (33307)
#   SLUICE_STATE_DIR           ($REPO/.sluice/services)  MySQL's data, logs, pid in ./mysql
#   SLUICE_CACHE               (~/.cache/sluice)         the chroot: ./mysql-sid-root
#   SLUICE_DEBIAN_MIRROR       (the URI in /etc/apt/sources.list.d/debian.sources)
#   SLUICE_START_TIMEOUT       (30)   seconds to wait for mysqld to answer
#   SLUICE_MYSQL_BUILD_TIMEOUT (300)  seconds allowed to each chroot build step (debootstrap, apt)
# To pick up a newer MySQL from sid: scripts/mysql.sh down; rm -rf ~/.cache/sluice/mysql-sid-root
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ ":$PATH:" == *":/usr/sbin:"* ]] || PATH="$PATH:/usr/sbin"
[[ ":$PATH:" == *":/sbin:"* ]] || PATH="$PATH:/sbin"

MYSQL_HOST=127.0.0.1
MYSQL_PORT="${SLUICE_MYSQL_PORT:-33307}"
MYSQL_USER="sluice"
MYSQL_PASSWORD="sluice"
MYSQL_ADMIN_USER="admin"
MYSQL_ADMIN_PASSWORD="admin"
START_TIMEOUT="${SLUICE_START_TIMEOUT:-30}"
BUILD_TIMEOUT="${SLUICE_MYSQL_BUILD_TIMEOUT:-300}"
MYSQL_PACKAGES=(mysql-server-core mysql-client)

CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
ROOT="$(realpath -m -- "$CACHE/mysql-sid-root")"
ROOT_READY="$ROOT/.sluice-ready" # written last: the chroot is complete
BUILD_LOG="$CACHE/mysql-sid-root-build.log"

STATE="$(realpath -m -- "${SLUICE_STATE_DIR:-$SLUICE_REPO/.sluice/services}")"
Y_DIR="$STATE/mysql" # bound to /sluice inside the chroot
Y_DATA="$Y_DIR/data"
Y_PID="$Y_DIR/mysqld.pid"
Y_ERR="$Y_DIR/error.log"
Y_PORTFILE="$Y_DIR/port"
Y_VERSIONFILE="$Y_DIR/version"
# The socket lives in the chroot's own /run (reachable by the chroot's clients without any
# mount), one per state directory; also what identifies our mysqld among others.
Y_SOCK_IN="/run/sluice/mysqld-$(printf '%s' "$STATE" | cksum | cut -d' ' -f1).sock"
Y_SOCK="$ROOT$Y_SOCK_IN" # the same socket, seen from the host

for v in MYSQL_PORT START_TIMEOUT BUILD_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "SLUICE_$v must be a number, got '${!v}'"
done
POLLS=$((START_TIMEOUT * 10)) # 0.1 s steps

# ---------------------------------------------------------------------------------------------
# helpers (the same as in scripts/services.sh)






# One `up`/`down` at a time per state directory. Children must not inherit fd 9 (see 9>&-).
take_lock() {
    mkdir -p "$Y_DIR"
    exec 9>"$Y_DIR/.lock"
    flock -w 300 9 || die "another scripts/mysql.sh holds $Y_DIR/.lock for over 300 s"
}

# "${NS_CHROOT[@]}" ROOT BIND CMD...: run CMD chrooted in ROOT, inside a private mount namespace
# with /proc and /dev mounted and, when BIND is not empty, the directory BIND bound to /sluice.
# The mounts exist only in that namespace and vanish with its last process. unshare, sh and
# chroot all exec: the pid of `"${NS_CHROOT[@]}" ... mysqld` is mysqld's.
# shellcheck disable=SC2016 # expanded by that sh
NS_CHROOT=(unshare --mount --propagation private -- /bin/sh -ec '
    root=$1 bind=$2
    shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    if [ -n "$bind" ]; then mount --bind "$bind" "$root/sluice"; fi
    exec chroot "$root" "$@"' ns_chroot)

# rm_tree DIR: rm -rf, refusing when anything is mounted below DIR (rm would go into it).
rm_tree() {
    [[ -e $1 ]] || return 0
    if findmnt -rn -o TARGET | awk -v d="$1/" 'index($0 "/", d) == 1 { found = 1 } END { exit !found }'; then
        die "something is mounted under $1 (see findmnt): unmount it, then remove $1"
    fi
    rm -rf -- "$1"
}

# The chroot's client tools, as root over the chroot's unix socket (root@localhost has no password).
mysql_cli() {
    chroot "$ROOT" mysql --no-defaults --socket="$Y_SOCK_IN" --user=root --connect-timeout=5 "$@"
}
mysql_ping() {
    [[ -S $Y_SOCK ]] &&
        chroot "$ROOT" mysqladmin --no-defaults --socket="$Y_SOCK_IN" --user=root \
            --connect-timeout=2 ping >/dev/null 2>&1
}

# debian_mirror: the Debian archive this machine uses (SLUICE_DEBIAN_MIRROR overrides).
debian_mirror() {
    local m="${SLUICE_DEBIAN_MIRROR:-}" f
    if [[ -z $m ]]; then
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f $f ]] || continue
            # deb822: the first URI of a "deb" stanza that is not the security archive.
            m="$(awk '
                /^[ \t]*$/ { if (types ~ /(^|[ \t])deb([ \t]|$)/ && uri != "" && uri !~ /security/) { print uri; exit } types = uri = ""; next }
                tolower($1) == "types:" { types = $0 }
                tolower($1) == "uris:" { uri = $2 }
                END { if (types ~ /(^|[ \t])deb([ \t]|$)/ && uri != "" && uri !~ /security/) print uri }
            ' "$f" | head -n 1)"
            [[ -z $m ]] || break
        done
    fi
    if [[ -z $m ]]; then
        m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { if ($i !~ /security/) { print $i; exit } } }')"
    fi
    printf '%s\n' "${m:-http://deb.debian.org/debian}" | sed 's:/*$::'
}

# ---------------------------------------------------------------------------------------------
# the chroot

chroot_ready() { [[ -f $ROOT_READY && -x $ROOT/usr/sbin/mysqld && -x $ROOT/usr/bin/mysql ]]; }

ensure_chroot() {
    chroot_ready && return 0
    mkdir -p "$CACHE"
    exec 8>"$CACHE/mysql-sid-root.lock"
    flock -w 900 8 || die "another scripts/mysql.sh has been building $ROOT for over 900 s (lock: $CACHE/mysql-sid-root.lock)"
    chroot_ready || build_chroot
    exec 8>&-
}

# build_chroot: debootstrap Debian sid into $ROOT.tmp, install MySQL there, then rename it.
build_chroot() {
    local t0=$SECONDS tmp="$ROOT.tmp" mirror rc=0 c
    command -v debootstrap >/dev/null 2>&1 || ensure_packages debootstrap wget
    for c in debootstrap wget unshare chroot timeout findmnt; do
        command -v "$c" >/dev/null 2>&1 || die "$c not found: install it (apt-get install debootstrap wget util-linux coreutils)"
    done
    mirror="$(debian_mirror)"
    # Fail fast when the mirror is out of reach (debootstrap would retry for a long time).
    timeout -k 5 30 wget -q --tries=2 --timeout=10 -O /dev/null "$mirror/dists/sid/InRelease" 8>&- 9>&- ||
        die "cannot fetch $mirror/dists/sid/InRelease: MySQL needs the Debian mirror once, to build its sid chroot in $ROOT (set SLUICE_DEBIAN_MIRROR to a reachable Debian mirror)"

    log "mysql: building a Debian sid chroot with ${MYSQL_PACKAGES[*]} in $ROOT from $mirror (one time, ~1 min; log: $BUILD_LOG)"
    rm_tree "$tmp"
    : >"$BUILD_LOG"
    # In its own mount namespace: the /proc, /sys debootstrap mounts go away with it, even when
    # it is killed. timeout signals the whole process group (wget, dpkg, ...).
    timeout -k 10 "$BUILD_TIMEOUT" unshare --mount --propagation private -- \
        debootstrap --variant=minbase sid "$tmp" "$mirror" >>"$BUILD_LOG" 2>&1 8>&- 9>&- || rc=$?
    if [[ $rc -ne 0 ]]; then
        tail_of "$BUILD_LOG" 10
        rm_tree "$tmp"
        [[ $rc -eq 124 || $rc -eq 137 ]] &&
            die "debootstrap of Debian sid did not finish within $BUILD_TIMEOUT s (log: $BUILD_LOG): check the network to $mirror or raise SLUICE_MYSQL_BUILD_TIMEOUT"
        die "debootstrap of Debian sid from $mirror failed, exit $rc (log above, full log: $BUILD_LOG)"
    fi
    log "mysql: debootstrap done in $((SECONDS - t0)) s"

    # apt inside: the machine's clock may be ahead of the archive's Release files; never start
    # services; no documentation.
    printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\nAcquire::http::Timeout "30";\nAcquire::Retries "2";\n' \
        >"$tmp/etc/apt/apt.conf.d/99sluice"
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
        >"$tmp/etc/dpkg/dpkg.cfg.d/99sluice-nodoc"
    printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
    chmod 755 "$tmp/usr/sbin/policy-rc.d"
    mkdir -p "$tmp/sluice" "$tmp/run/sluice"

    local step
    for step in update install; do
        local args=(update)
        [[ $step == install ]] && args=(install -y -q --no-install-recommends "${MYSQL_PACKAGES[@]}")
        rc=0
        timeout -k 10 "$BUILD_TIMEOUT" "${NS_CHROOT[@]}" "$tmp" "" \
            env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false "${args[@]}" \
            >>"$BUILD_LOG" 2>&1 8>&- 9>&- || rc=$?
        if [[ $rc -ne 0 ]]; then
            tail_of "$BUILD_LOG" 10
            rm_tree "$tmp"
            [[ $rc -eq 124 || $rc -eq 137 ]] &&
                die "apt-get $step in the sid chroot did not finish within $BUILD_TIMEOUT s (log: $BUILD_LOG): check the network to $mirror or raise SLUICE_MYSQL_BUILD_TIMEOUT"
            die "apt-get $step of ${MYSQL_PACKAGES[*]} in the sid chroot failed, exit $rc (log above, full log: $BUILD_LOG)"
        fi
    done
    chroot "$tmp" apt-get clean >>"$BUILD_LOG" 2>&1 || true
    rm -rf "$tmp/var/lib/apt/lists/"* # ~70 MB; `apt-get update` first to install more

    local version
    # shellcheck disable=SC2016 # a dpkg-query format
    version="$(chroot "$tmp" dpkg-query -W -f='${Version}' mysql-server-core 2>/dev/null)" ||
        { rm_tree "$tmp"; die "mysql-server-core is not installed in the chroot after apt-get (log: $BUILD_LOG)"; }
    printf 'mysql-server-core %s\nmirror %s\nbuilt %s\n' "$version" "$mirror" "$(date -u +%FT%TZ)" >"$tmp/.sluice-ready.tmp"
    mv "$tmp/.sluice-ready.tmp" "$tmp/.sluice-ready"
    rm_tree "$ROOT" # an incomplete one
    mv "$tmp" "$ROOT"
    log "mysql: chroot ready in $((SECONDS - t0)) s (mysql-server-core $version, $(du -sm "$ROOT" | cut -f1) MB)"
}

# chroot_version: MySQL's version from the chroot's package, e.g. 9.7.0 (or "unknown").
chroot_version() {
    local v
    v="$(awk '$1 == "mysql-server-core" { print $2 }' "$ROOT_READY" 2>/dev/null)"
    v="${v#*:}"
    v="${v%%-*}"
    printf '%s\n' "${v:-unknown}"
}

# ---------------------------------------------------------------------------------------------
# mysqld

mysql_up() {
    local pid i
    if pid="$(mysql_pid)"; then
        echo "$pid" >"$Y_PID"
        local running_port
        running_port="$(cat "$Y_PORTFILE" 2>/dev/null || echo "?")"
        [[ $running_port == "$MYSQL_PORT" ]] ||
            die "MySQL (pid $pid) already runs on port $running_port, not $MYSQL_PORT: run 'scripts/mysql.sh down' first"
        for ((i = 0; i < POLLS; i++)); do
            port_open "$MYSQL_PORT" && mysql_ping && break
            sleep 0.1
        done
        ((i < POLLS)) ||
            die "MySQL (pid $pid) runs but does not answer on $MYSQL_HOST:$MYSQL_PORT: run 'scripts/mysql.sh down' and retry (log: $Y_ERR)"
        log "mysql: already running (pid $pid)"
        [[ -f $Y_DIR/users-ok ]] || mysql_users
        return 0
    fi

    port_open "$MYSQL_PORT" &&
        die "port $MYSQL_PORT on 127.0.0.1 is taken by another process: stop it or set SLUICE_MYSQL_PORT to a free port"
    ensure_chroot

    mkdir -p "$Y_DIR/files" "$Y_DIR/tmp" "$ROOT/sluice" "$ROOT/run/sluice"
    chmod 700 "$Y_DIR/files" # else mysqld warns that --secure-file-priv is open to all users
    rm -f "$Y_PID" "$Y_SOCK" "$Y_SOCK.lock" "$Y_DIR/users-ok" "$Y_VERSIONFILE"

    if [[ ! -d $Y_DATA/mysql ]]; then
        log "mysql: creating a data directory in $Y_DATA"
        rm -rf "$Y_DATA"
        if ! timeout -k 5 120 "${NS_CHROOT[@]}" "$ROOT" "$Y_DIR" mysqld --no-defaults --initialize-insecure \
            --user=root --datadir=/sluice/data --tmpdir=/sluice/tmp \
            >"$Y_DIR/install.log" 2>&1 9>&-; then
            tail_of "$Y_DIR/install.log"
            rm -rf "$Y_DATA"
            die "mysqld --initialize-insecure failed (log above, full log: $Y_DIR/install.log)"
        fi
    fi

    [[ -f $Y_ERR ]] && mv -f "$Y_ERR" "$Y_ERR.prev"
    # setsid, unshare, sh and chroot all exec: $! is mysqld itself.
    setsid "${NS_CHROOT[@]}" "$ROOT" "$Y_DIR" \
        mysqld --no-defaults --user=root \
        --datadir=/sluice/data --tmpdir=/sluice/tmp --pid-file=/sluice/mysqld.pid \
        --log-error=/sluice/error.log --socket="$Y_SOCK_IN" --secure-file-priv=/sluice/files \
        --bind-address=127.0.0.1 --port="$MYSQL_PORT" --skip-name-resolve --mysqlx=OFF \
        --server-id=1 --log-bin=mysql-bin --binlog-format=ROW \
        --binlog-row-image=FULL --binlog-row-metadata=FULL \
        --gtid-mode=ON --enforce-gtid-consistency=ON \
        --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 --max-connections=200 \
        --max-allowed-packet=64M \
        </dev/null >>"$Y_DIR/mysqld.out" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$Y_PID" # mysqld rewrites it with the same pid once it is up
    echo "$MYSQL_PORT" >"$Y_PORTFILE"

    for ((i = 0; i < POLLS; i++)); do
        if ! proc_live "$pid"; then
            tail_of "$Y_ERR"
            tail_of "$Y_DIR/mysqld.out" 5
            die "mysqld exited during start-up (log above, full log: $Y_ERR)"
        fi
        port_open "$MYSQL_PORT" && mysql_ping && break
        sleep 0.1
    done
    if ((i >= POLLS)); then
        tail_of "$Y_ERR"
        die "mysqld (pid $pid) did not answer within $START_TIMEOUT s (log above, full log: $Y_ERR); raise SLUICE_START_TIMEOUT or run 'scripts/mysql.sh down' and retry"
    fi
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == mysqld ]] ||
        die "internal: pid $pid is not mysqld ($(cat "/proc/$pid/comm" 2>/dev/null))"
    log "mysql: started (pid $pid) in $(awk "BEGIN{print $i/10}") s"
    mysql_users
}

# Accounts (idempotent). root stays passwordless on the unix socket only (--skip-name-resolve:
# 'localhost' accounts match socket connections); TCP clients use these (caching_sha2_password:
# over plain TCP, clients need the server's RSA public key or TLS).
mysql_users() {
    local h sql=""
    for h in 127.0.0.1 localhost; do
        sql+="CREATE USER IF NOT EXISTS '$MYSQL_USER'@'$h' IDENTIFIED BY '$MYSQL_PASSWORD';
ALTER USER '$MYSQL_USER'@'$h' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD, SHOW VIEW ON *.* TO '$MYSQL_USER'@'$h';
CREATE USER IF NOT EXISTS '$MYSQL_ADMIN_USER'@'$h' IDENTIFIED BY '$MYSQL_ADMIN_PASSWORD';
ALTER USER '$MYSQL_ADMIN_USER'@'$h' IDENTIFIED BY '$MYSQL_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_ADMIN_USER'@'$h' WITH GRANT OPTION;
"
    done
    # Not binlogged: these statements are set-up, not data for the tests to stream.
    printf 'SET sql_log_bin = 0;\n%s' "$sql" | mysql_cli 2>"$Y_DIR/users.err" 9>&- || {
        tail_of "$Y_DIR/users.err"
        die "creating MySQL users failed (error above)"
    }
    rm -f "$Y_DIR/users.err"
    mysql_cli -N -B -e 'SELECT VERSION()' >"$Y_VERSIONFILE" 2>/dev/null 9>&- || rm -f "$Y_VERSIONFILE"
    touch "$Y_DIR/users-ok"
}

# mysql_pid: print the pid of our mysqld, if one runs.
mysql_pid() {
    local p
    pid_alive "$Y_PID" mysqld && return 0
    # No usable pid file: look for a mysqld on our own socket (unique per state directory).
    for p in $(pgrep -x mysqld || true); do
        if proc_live "$p" &&
            tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "--socket=$Y_SOCK_IN"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

mysql_clean() {
    rm -rf "$Y_DATA" "$Y_DIR/tmp" "$Y_DIR/files"
    rm -f "$Y_PID" "$Y_PORTFILE" "$Y_VERSIONFILE" "$Y_DIR/users-ok" "$Y_SOCK" "$Y_SOCK.lock"
}

server_version() {
    local v
    v="$(cat "$Y_VERSIONFILE" 2>/dev/null || true)"
    printf '%s\n' "${v:-$(chroot_version)}"
}

# ---------------------------------------------------------------------------------------------

print_env() {
    local kv
    for kv in \
        "SLUICE_MYSQL_HOST=$MYSQL_HOST" \
        "SLUICE_MYSQL_PORT=$MYSQL_PORT" \
        "SLUICE_MYSQL_USER=$MYSQL_USER" \
        "SLUICE_MYSQL_PASSWORD=$MYSQL_PASSWORD" \
        "SLUICE_MYSQL_ADMIN_USER=$MYSQL_ADMIN_USER" \
        "SLUICE_MYSQL_ADMIN_PASSWORD=$MYSQL_ADMIN_PASSWORD" \
        "SLUICE_MYSQL_VERSION=$(server_version)" \
        "SLUICE_MYSQL_URL=mysql://$MYSQL_USER:$MYSQL_PASSWORD@$MYSQL_HOST:$MYSQL_PORT" \
        "SLUICE_MYSQL_ADMIN_URL=mysql://$MYSQL_ADMIN_USER:$MYSQL_ADMIN_PASSWORD@$MYSQL_HOST:$MYSQL_PORT"; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
}

cmd_up() {
    local t0=$SECONDS
    [[ ${EUID:-$(id -u)} -eq 0 ]] ||
        die "scripts/mysql.sh needs root (chroot, unshare, mount): run it as root"
    take_lock
    mysql_up
    cat <<EOF
MySQL is up ($((SECONDS - t0)) s; state in $Y_DIR, chroot $ROOT):
  MySQL $(server_version)  $MYSQL_HOST:$MYSQL_PORT  pid $(cat "$Y_PID")
      user $MYSQL_USER / password $MYSQL_PASSWORD (replication + SELECT)
      admin $MYSQL_ADMIN_USER / password $MYSQL_ADMIN_PASSWORD (ALL WITH GRANT OPTION)
      binlog ROW, row image FULL, row metadata FULL, GTID on; caching_sha2_password only
      client: chroot $ROOT mysql -h$MYSQL_HOST -P$MYSQL_PORT -u$MYSQL_USER -p$MYSQL_PASSWORD
Shell settings:  eval "\$(scripts/mysql.sh env)"
EOF
}

cmd_down() {
    take_lock
    local pid=""
    if pid="$(mysql_pid)"; then
        log "mysql: stopping (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone mysqld "$pid" 60
    fi
    mysql_clean
    log "mysql is down (data removed; the chroot stays in $ROOT)"
}

cmd_status() {
    local pid
    if pid="$(mysql_pid)"; then
        local state=running
        port_open "$MYSQL_PORT" || state="running (not answering on port $MYSQL_PORT)"
        echo "mysql:   $state  pid $pid  $MYSQL_HOST:$MYSQL_PORT  (MySQL $(server_version), chroot $ROOT)"
        [[ $state == running ]]
    else
        local built="not built"
        chroot_ready && built="MySQL $(chroot_version) cached in $ROOT"
        echo "mysql:   stopped  ($MYSQL_HOST:$MYSQL_PORT; $built)"
        return 1
    fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) print_env ;;
*)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
