#!/usr/bin/env bash
# Test services for sluice, private to this checkout and bound to 127.0.0.1 only:
#   - MariaDB (Debian's mariadb-server) with a ROW/FULL binlog, the source database;
#   - tansu 0.6.0, a Kafka-protocol broker with in-memory storage.
#
# usage: scripts/services.sh up|down|status|env
#   up      install what is missing, start both services (a no-op for services already running)
#   down    stop both and delete their data (next `up` starts from a clean slate)
#   status  one line per service; exit status 0 only when both are running
#   env     print `export` lines with the connection settings: eval "$(scripts/services.sh env)"
#
# Settings (environment):
#   SLUICE_MARIADB_PORT  (33306)   SLUICE_KAFKA_PORT (39092)
#   SLUICE_STATE_DIR     ($REPO/.sluice/services)   data, logs, pid files
#   SLUICE_CACHE         (~/.cache/sluice)          the tansu build is cached here
#   SLUICE_KAFKA_STORAGE (memory://tansu/)          e.g. sqlite://tansu.db (relative to $STATE/tansu/data)
#   SLUICE_START_TIMEOUT (30)                       seconds to wait for a service to answer
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# mariadbd, mariadb-install-db live in /usr/sbin and /usr/bin.
[[ ":$PATH:" == *":/usr/sbin:"* ]] || PATH="$PATH:/usr/sbin"

TANSU_VERSION=0.6.0
MARIADB_HOST=127.0.0.1
MARIADB_PORT="${SLUICE_MARIADB_PORT:-33306}"
KAFKA_PORT="${SLUICE_KAFKA_PORT:-39092}"
MARIADB_USER="sluice"
MARIADB_PASSWORD="sluice"
MARIADB_ADMIN_USER="admin"
MARIADB_ADMIN_PASSWORD="admin"
KAFKA_STORAGE="${SLUICE_KAFKA_STORAGE:-memory://tansu/}"
START_TIMEOUT="${SLUICE_START_TIMEOUT:-30}"

CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
TANSU_BIN="$TANSU_ROOT/bin/tansu"

STATE="$(realpath -m -- "${SLUICE_STATE_DIR:-$SLUICE_REPO/.sluice/services}")"
M_DIR="$STATE/mariadb"
M_DATA="$M_DIR/data"
M_PID="$M_DIR/mariadbd.pid"
M_ERR="$M_DIR/error.log"
M_PORTFILE="$M_DIR/port"
T_DIR="$STATE/tansu"
T_DATA="$T_DIR/data"
T_PID="$T_DIR/tansu.pid"
T_LOG="$T_DIR/tansu.log"
T_PORTFILE="$T_DIR/port"

# Unix socket paths are limited to ~108 bytes: fall back to /tmp for deep state directories.
M_SOCK="$M_DIR/mariadbd.sock"
if [[ ${#M_SOCK} -ge 100 ]]; then
    M_SOCK="/tmp/sluice-mariadb-$(printf '%s' "$STATE" | cksum | cut -d' ' -f1).sock"
fi

for v in MARIADB_PORT KAFKA_PORT START_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "SLUICE_$v must be a number, got '${!v}'"
done
[[ $MARIADB_PORT -ne $KAFKA_PORT ]] || die "SLUICE_MARIADB_PORT and SLUICE_KAFKA_PORT must differ"
POLLS=$((START_TIMEOUT * 10)) # 0.1 s steps

# ---------------------------------------------------------------------------------------------
# helpers






# One `up`/`down` at a time per state directory. Children must not inherit fd 9 (see 9>&-).
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock -w 300 9 || die "another scripts/services.sh holds $STATE/.lock for over 300 s"
}

mariadb_cli() { mariadb --no-defaults --socket="$M_SOCK" --user=root --connect-timeout=5 "$@"; }
mariadb_ping() {
    mariadb-admin --no-defaults --socket="$M_SOCK" --user=root --connect-timeout=2 ping >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# installation

ensure_tansu() {
    [[ -x $TANSU_BIN ]] && return 0
    mkdir -p "$CACHE"
    exec 8>"$CACHE/tansu-$TANSU_VERSION.lock"
    flock 8
    local pid cmd waited=0
    # A build started by hand (or by an earlier run) may still be going: wait for it.
    while :; do
        cmd=""
        for pid in $(pgrep -x cargo || true); do
            cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
            [[ $cmd == *"install tansu"* ]] && break
            cmd=""
        done
        [[ -n $cmd ]] || break
        [[ $waited -eq 1 ]] || log "waiting for a running 'cargo install tansu' (pid $pid) to finish..."
        waited=1
        sleep 2
    done
    if [[ ! -x $TANSU_BIN ]]; then
        need_cargo
        local build_log="$CACHE/tansu-$TANSU_VERSION-build.log" t0=$SECONDS
        log "building tansu $TANSU_VERSION into $TANSU_ROOT (one time, ~8 min on 2 cores; log: $build_log)"
        if ! cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
            --root "$TANSU_ROOT" >"$build_log" 2>&1 8>&- 9>&-; then
            tail_of "$build_log" 30
            die "building tansu failed (log above, full log: $build_log): check access to crates.io and the C toolchain (build-essential)"
        fi
        log "built tansu in $((SECONDS - t0)) s"
    fi
    exec 8>&-
    [[ -x $TANSU_BIN ]] || die "tansu is missing at $TANSU_BIN after the build: remove $TANSU_ROOT and retry"
}

# ---------------------------------------------------------------------------------------------
# MariaDB

mariadb_up() {
    local pid i
    if pid="$(pid_alive "$M_PID" mariadbd)"; then
        local running_port
        running_port="$(cat "$M_PORTFILE" 2>/dev/null || echo "?")"
        [[ $running_port == "$MARIADB_PORT" ]] ||
            die "MariaDB (pid $pid) already runs on port $running_port, not $MARIADB_PORT: run 'scripts/services.sh down' first"
        for ((i = 0; i < POLLS; i++)); do
            port_open "$MARIADB_PORT" && mariadb_ping && break
            sleep 0.1
        done
        ((i < POLLS)) ||
            die "MariaDB (pid $pid) runs but does not answer on $MARIADB_HOST:$MARIADB_PORT: run 'scripts/services.sh down' and retry (log: $M_ERR)"
        log "mariadb: already running (pid $pid)"
        [[ -f $M_DIR/users-ok ]] || mariadb_users
        return 0
    fi

    port_open "$MARIADB_PORT" &&
        die "port $MARIADB_PORT on 127.0.0.1 is taken by another process: stop it or set SLUICE_MARIADB_PORT to a free port"
    { command -v mariadbd && command -v mariadb-install-db; } >/dev/null ||
        die "mariadbd not found: install mariadb-server (apt-get install mariadb-server mariadb-client)"

    mkdir -p "$M_DIR"
    rm -f "$M_PID" "$M_SOCK" "$M_DIR/users-ok"
    local root_opt=()
    [[ ${EUID:-$(id -u)} -eq 0 ]] && root_opt=(--user=root)

    if [[ ! -d $M_DATA/mysql ]]; then
        log "mariadb: creating a data directory in $M_DATA"
        rm -rf "$M_DATA"
        mkdir -p "$M_DATA"
        if ! mariadb-install-db --no-defaults --datadir="$M_DATA" "${root_opt[@]}" \
            --auth-root-authentication-method=normal --skip-test-db --force \
            >"$M_DIR/install.log" 2>&1 9>&-; then
            tail_of "$M_DIR/install.log"
            rm -rf "$M_DATA"
            die "mariadb-install-db failed (log above, full log: $M_DIR/install.log)"
        fi
    fi

    [[ -f $M_ERR ]] && mv -f "$M_ERR" "$M_ERR.prev"
    setsid mariadbd --no-defaults \
        --datadir="$M_DATA" --pid-file="$M_PID" --socket="$M_SOCK" --log-error="$M_ERR" \
        --bind-address=127.0.0.1 --port="$MARIADB_PORT" --skip-name-resolve \
        --server-id=1 --log-bin=mysql-bin --binlog-format=ROW \
        --binlog-row-image=FULL --binlog-row-metadata=FULL \
        --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 --max-connections=200 \
        --max-allowed-packet=64M \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        "${root_opt[@]}" </dev/null >>"$M_DIR/mariadbd.out" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$M_PID" # mariadbd rewrites it with the same pid once it is up
    echo "$MARIADB_PORT" >"$M_PORTFILE"

    for ((i = 0; i < POLLS; i++)); do
        if ! proc_live "$pid"; then
            tail_of "$M_ERR"
            die "mariadbd exited during start-up (log above, full log: $M_ERR)"
        fi
        mariadb_ping && break
        sleep 0.1
    done
    if ((i >= POLLS)); then
        tail_of "$M_ERR"
        die "mariadbd (pid $pid) did not answer within $START_TIMEOUT s (log above, full log: $M_ERR); raise SLUICE_START_TIMEOUT or run 'scripts/services.sh down' and retry"
    fi
    log "mariadb: started (pid $pid) in $(awk "BEGIN{print $i/10}") s"
    mariadb_users
}

# Accounts (idempotent). root stays passwordless on the unix socket only (--skip-name-resolve:
# 'localhost' accounts match socket connections); TCP clients use these:
mariadb_users() {
    local h sql=""
    for h in 127.0.0.1 localhost; do
        sql+="CREATE USER IF NOT EXISTS '$MARIADB_USER'@'$h' IDENTIFIED BY '$MARIADB_PASSWORD';
ALTER USER '$MARIADB_USER'@'$h' IDENTIFIED BY '$MARIADB_PASSWORD';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD, SHOW VIEW ON *.* TO '$MARIADB_USER'@'$h';
CREATE USER IF NOT EXISTS '$MARIADB_ADMIN_USER'@'$h' IDENTIFIED BY '$MARIADB_ADMIN_PASSWORD';
ALTER USER '$MARIADB_ADMIN_USER'@'$h' IDENTIFIED BY '$MARIADB_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MARIADB_ADMIN_USER'@'$h' WITH GRANT OPTION;
"
    done
    # mariadb-install-db also creates root@'127.0.0.1', root@'::1' and root@'<hostname>'.
    sql+="DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(hostname)';
"
    # Not binlogged: these statements are set-up, not data for the tests to stream.
    printf 'SET sql_log_bin = 0;\n%s' "$sql" | mariadb_cli 2>"$M_DIR/users.err" 9>&- || {
        tail_of "$M_DIR/users.err"
        die "creating MariaDB users failed (error above)"
    }
    rm -f "$M_DIR/users.err"
    touch "$M_DIR/users-ok"
}

# mariadb_pid: print the pid of our mariadbd, if one runs.
mariadb_pid() {
    local p
    pid_alive "$M_PID" mariadbd && return 0
    # No usable pid file: look for a mariadbd on our own data directory.
    for p in $(pgrep -x mariadbd || true); do
        if proc_live "$p" &&
            tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "--datadir=$M_DATA"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

mariadb_clean() {
    rm -rf "$M_DATA"
    rm -f "$M_PID" "$M_PORTFILE" "$M_DIR/users-ok" "$M_SOCK" "$M_SOCK.lock"
}

mariadb_status() {
    local pid
    if pid="$(pid_alive "$M_PID" mariadbd)"; then
        local state=running
        port_open "$MARIADB_PORT" || state="running (not answering on port $MARIADB_PORT)"
        echo "mariadb: $state  pid $pid  $MARIADB_HOST:$MARIADB_PORT  socket $M_SOCK"
        [[ $state == running ]]
    else
        echo "mariadb: stopped  ($MARIADB_HOST:$MARIADB_PORT)"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# tansu

tansu_up() {
    local pid i
    if pid="$(pid_alive "$T_PID" tansu)"; then
        local running_port
        running_port="$(cat "$T_PORTFILE" 2>/dev/null || echo "?")"
        [[ $running_port == "$KAFKA_PORT" ]] ||
            die "tansu (pid $pid) already runs on port $running_port, not $KAFKA_PORT: run 'scripts/services.sh down' first"
        for ((i = 0; i < POLLS; i++)); do
            port_open "$KAFKA_PORT" && break
            sleep 0.1
        done
        ((i < POLLS)) ||
            die "tansu (pid $pid) runs but does not answer on 127.0.0.1:$KAFKA_PORT: run 'scripts/services.sh down' and retry (log: $T_LOG)"
        log "tansu: already running (pid $pid)"
        return 0
    fi

    port_open "$KAFKA_PORT" &&
        die "port $KAFKA_PORT on 127.0.0.1 is taken by another process: stop it or set SLUICE_KAFKA_PORT to a free port"
    ensure_tansu

    mkdir -p "$T_DATA"
    rm -f "$T_PID"
    [[ -f $T_LOG ]] && mv -f "$T_LOG" "$T_LOG.prev"
    # tansu also reads its settings from the environment (and a .env file): pass every listener
    # explicitly and drop the variables that would add endpoints.
    (
        cd "$T_DATA"
        exec env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT -u CLUSTER_ID \
            setsid "$TANSU_BIN" broker \
            --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --storage-engine "$KAFKA_STORAGE"
    ) </dev/null >>"$T_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$T_PID"
    echo "$KAFKA_PORT" >"$T_PORTFILE"

    for ((i = 0; i < POLLS; i++)); do
        if ! proc_live "$pid"; then
            tail_of "$T_LOG"
            die "tansu exited during start-up (log above, full log: $T_LOG)"
        fi
        port_open "$KAFKA_PORT" && break
        sleep 0.1
    done
    if ((i >= POLLS)); then
        tail_of "$T_LOG"
        die "tansu (pid $pid) did not listen on 127.0.0.1:$KAFKA_PORT within $START_TIMEOUT s (full log: $T_LOG)"
    fi
    # `env` and `setsid` exec in place, so $! is tansu itself.
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == tansu ]] ||
        die "internal: pid $pid is not tansu ($(cat "/proc/$pid/comm" 2>/dev/null))"
    log "tansu: started (pid $pid) in $(awk "BEGIN{print $i/10}") s"
}

tansu_clean() {
    rm -rf "$T_DATA"
    rm -f "$T_PID" "$T_PORTFILE"
}

tansu_status() {
    local pid
    if pid="$(pid_alive "$T_PID" tansu)"; then
        local state=running
        port_open "$KAFKA_PORT" || state="running (not answering on port $KAFKA_PORT)"
        echo "kafka:   $state  pid $pid  127.0.0.1:$KAFKA_PORT  (tansu $TANSU_VERSION, $KAFKA_STORAGE)"
        [[ $state == running ]]
    else
        echo "kafka:   stopped  (127.0.0.1:$KAFKA_PORT)"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------

print_env() {
    local kv
    for kv in \
        "SLUICE_MARIADB_HOST=$MARIADB_HOST" \
        "SLUICE_MARIADB_PORT=$MARIADB_PORT" \
        "SLUICE_MARIADB_USER=$MARIADB_USER" \
        "SLUICE_MARIADB_PASSWORD=$MARIADB_PASSWORD" \
        "SLUICE_MARIADB_ADMIN_USER=$MARIADB_ADMIN_USER" \
        "SLUICE_MARIADB_ADMIN_PASSWORD=$MARIADB_ADMIN_PASSWORD" \
        "SLUICE_MARIADB_SOCKET=$M_SOCK" \
        "SLUICE_MARIADB_URL=mysql://$MARIADB_USER:$MARIADB_PASSWORD@$MARIADB_HOST:$MARIADB_PORT" \
        "SLUICE_MARIADB_ADMIN_URL=mysql://$MARIADB_ADMIN_USER:$MARIADB_ADMIN_PASSWORD@$MARIADB_HOST:$MARIADB_PORT" \
        "SLUICE_KAFKA_PORT=$KAFKA_PORT" \
        "SLUICE_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT" \
        "SLUICE_TANSU_BIN=$TANSU_BIN"; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
}

cmd_up() {
    local t0=$SECONDS
    ensure_packages "${SLUICE_SERVICE_PACKAGES[@]}"
    take_lock
    mariadb_up
    tansu_up
    local version
    version="$(mariadb_cli -N -B -e 'SELECT VERSION()' 9>&- 2>/dev/null || echo '?')"
    cat <<EOF
Services are up ($((SECONDS - t0)) s; state in $STATE):
  MariaDB $version  $MARIADB_HOST:$MARIADB_PORT  pid $(cat "$M_PID")
      user $MARIADB_USER / password $MARIADB_PASSWORD (replication + SELECT)
      admin $MARIADB_ADMIN_USER / password $MARIADB_ADMIN_PASSWORD (ALL WITH GRANT OPTION)
      socket $M_SOCK (root, no password); binlog ROW, row image FULL, row metadata FULL
  Kafka (tansu $TANSU_VERSION, $KAFKA_STORAGE)  127.0.0.1:$KAFKA_PORT  pid $(cat "$T_PID")
      no topic auto-creation: create topics first
Shell settings:  eval "\$(scripts/services.sh env)"
EOF
}

cmd_down() {
    take_lock
    local mpid tpid
    # Both at once: TERM, then wait.
    if mpid="$(mariadb_pid)"; then
        log "mariadb: stopping (pid $mpid)"
        kill -TERM "$mpid" 2>/dev/null || true
    fi
    if tpid="$(pid_alive "$T_PID" tansu)"; then
        log "tansu: stopping (pid $tpid)"
        kill -TERM "$tpid" 2>/dev/null || true
    fi
    [[ -z $mpid ]] || wait_gone mariadbd "$mpid" 60
    [[ -z $tpid ]] || wait_gone tansu "$tpid" 10
    mariadb_clean
    tansu_clean
    log "services are down (data removed)"
}

cmd_status() {
    local rc=0
    mariadb_status || rc=1
    tansu_status || rc=1
    return $rc
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
