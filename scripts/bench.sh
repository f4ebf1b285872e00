#!/usr/bin/env bash
# The benchmark: sluice's throughput, latency and memory against the limits, side by side.
#
# usage: scripts/bench.sh [options]
#   --rows N            row changes of the narrow (10-column) load        (2000000)
#   --wide-rows N       row changes of the wide (40-column) load          (200000; 0 skips it)
#   --bigtxn-rows N     rows of the one-transaction load                  (1000000; 0 skips it)
#   --load-rows N       rows of the narrow table the initial load copies   (2000000; 0 skips it)
#   --load-wide-rows N  rows of the wide table the initial load copies     (200000; 0 skips it)
#   --repeat R          runs of each throughput figure and of latency    (2)
#   --python-repeat R   runs of python-mysql-replication (slow)          (1)
#   --latency-seconds S length of each latency run (plus 5 s warm-up)     (30)
#   --latency-rate R    rows/s inserted during the latency runs           (10000)
#   --policy P          sluice partition policy: partition0|table|primary_key  (primary_key)
#   --partitions P      partitions of every topic                         (3)
#   --phases "LIST"     any of: narrow wide bigtxn latency load           (all five)
#                       (only the initial load: --phases load)
#   --out FILE          where to write the results table   (bench/results/<UTC date-time>.md)
#   --no-save           print the table only
#
# It builds sluice and the bench programs (cargo, release, into $CARGO_TARGET_DIR or target/;
# SLUICE_BIN=/path/to/sluice uses that binary instead and builds nothing, taking the bench
# programs from its examples/ directory, needed by the narrow, wide and latency phases only),
# installs python-mysql-replication into .sluice/bench-venv when missing (narrow, wide), and
# starts its own MariaDB and tansu (memory storage) on ports 33456/39456 (override with
# SLUICE_BENCH_MARIADB_PORT / SLUICE_BENCH_KAFKA_PORT) under .sluice/bench, through
# scripts/services.sh, so it neither disturbs nor is disturbed by the test services; both are
# stopped and wiped at the end. tansu is restarted empty before every Kafka run.
#
# Per phase (narrow, wide), the load is written into a fresh binlog file before anything reads
# it; then, REPEAT times: sluice with the null sink, sluice into Kafka, the raw producer (the
# records sluice produced, dumped once, produced again by a minimal rdkafka loop with the sink's
# settings), mariadb-binlog --verbose to /dev/null, and python-mysql-replication. bigtxn: one
# transaction, sluice only (memory bound). latency: sluice streaming while
# crates/sluice/examples/latency_probe.rs inserts at a steady rate and times each row to Kafka.
# load: the initial load (`[initial_load] data = true`) of an existing table, benchload.t10 (the
# narrow shape) and benchload.wide (the wide shape), each filled without binlog and loaded alone
# (include = that table), REPEAT times: sluice with the null sink (read + encode), sluice into
# Kafka (acknowledged), and mariadb-dump --quick --single-transaction of the same table to
# /dev/null as the baseline. `sluice run --stop-at-end` stops once the load is done and the
# stream caught up with the binlog end seen at start-up (the load's own start position); its
# rate is taken from sluice's "initial load complete" log line (rows / load time), and the
# whole process's wall time, peak RSS and CPU are measured as in the other phases (a run that
# has not stopped after 15 min is killed and shows as failed). The bench MariaDB's InnoDB buffer
# pool is raised to 1 GiB for this phase so that every reader reads the tables from memory.
# load_parallelism (tables loaded at once) is written into the task only when the binary
# accepts the key (one table per run, so it does not change the figures).
# Every sluice run is timed and its peak RSS taken (bench/measure.py). bench/report.py prints
# the table, with the machine facts and the load on the machine at start and end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ROWS=2000000
WIDE_ROWS=200000
BIGTXN_ROWS=1000000
LOAD_ROWS=2000000
LOAD_WIDE_ROWS=200000
LOAD_PARALLELISM=4
REPEAT=2
PY_REPEAT=1
LAT_SECONDS=30
LAT_WARMUP=5
LAT_RATE=10000
POLICY=primary_key
PARTITIONS=3
PHASES="narrow wide bigtxn latency load"
OUT=""
SAVE=1
COMMAND="scripts/bench.sh $*"

while [[ $# -gt 0 ]]; do
    case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --wide-rows) WIDE_ROWS=$2; shift 2 ;;
    --bigtxn-rows) BIGTXN_ROWS=$2; shift 2 ;;
    --load-rows) LOAD_ROWS=$2; shift 2 ;;
    --load-wide-rows) LOAD_WIDE_ROWS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --python-repeat) PY_REPEAT=$2; shift 2 ;;
    --latency-seconds) LAT_SECONDS=$2; shift 2 ;;
    --latency-rate) LAT_RATE=$2; shift 2 ;;
    --policy) POLICY=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    --phases) PHASES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-save) SAVE=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
for v in ROWS WIDE_ROWS BIGTXN_ROWS LOAD_ROWS LOAD_WIDE_ROWS REPEAT PY_REPEAT LAT_SECONDS LAT_RATE PARTITIONS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ $POLICY =~ ^(partition0|table|primary_key)$ ]] || die "--policy must be partition0, table or primary_key"
for phase in $PHASES; do
    [[ $phase =~ ^(narrow|wide|bigtxn|latency|load)$ ]] || die "unknown phase '$phase' (see --help)"
done
# phase_on NAME...: whether any of the phases NAME is to run.
phase_on() {
    local p q
    for p in $PHASES; do for q in "$@"; do [[ $p == "$q" ]] && return 0; done; done
    return 1
}

M_PORT="${SLUICE_BENCH_MARIADB_PORT:-33456}"
K_PORT="${SLUICE_BENCH_KAFKA_PORT:-39456}"
STATE="$SLUICE_REPO/.sluice/bench"
SVC="$STATE/services"
RUN="$STATE/run"
VENV="$SLUICE_REPO/.sluice/bench-venv"
TARGET="${CARGO_TARGET_DIR:-$SLUICE_REPO/target}"
SLUICE="${SLUICE_BIN:-$TARGET/release/sluice}"
EXAMPLES="$(dirname "$SLUICE")/examples"
PY_PACKAGE="mysql-replication==1.0.17"

svc() { SLUICE_STATE_DIR="$SVC" SLUICE_MARIADB_PORT="$M_PORT" SLUICE_KAFKA_PORT="$K_PORT" scripts/services.sh "$@"; }

# ---------------------------------------------------------------------------------------------
# set-up

ensure_packages "${SLUICE_SERVICE_PACKAGES[@]}"
if [[ -n ${SLUICE_BIN:-} ]]; then
    [[ -x $SLUICE ]] || die "SLUICE_BIN=$SLUICE is not an executable"
    log "bench: using $SLUICE (SLUICE_BIN; nothing built)"
    if phase_on narrow wide latency; then
        for p in raw_producer latency_probe; do
            [[ -x $EXAMPLES/$p ]] || die "$EXAMPLES/$p is missing: build it (cargo build --release -p sluice --examples) or run only --phases \"bigtxn load\""
        done
    fi
else
    need_cargo
    log "bench: building sluice and the bench programs (release)"
    cargo build --release --quiet -p sluice --bins --examples
fi

if phase_on narrow wide && ! "$VENV/bin/python" -c 'import pymysqlreplication' 2>/dev/null; then
    log "bench: installing $PY_PACKAGE into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "$PY_PACKAGE"
fi

LATENCY_MEASURE_PID=""
cleanup() {
    local rc=$?
    if [[ -n $LATENCY_MEASURE_PID ]] && kill -0 "$LATENCY_MEASURE_PID" 2>/dev/null; then
        local spid
        spid="$(cat "$RUN/latency.pid" 2>/dev/null || true)"
        [[ -n $spid ]] && kill -TERM "$spid" 2>/dev/null || true
        wait "$LATENCY_MEASURE_PID" 2>/dev/null || true
    fi
    svc down >/dev/null 2>&1 || log "bench: could not stop the bench services; run: SLUICE_STATE_DIR=$SVC scripts/services.sh down"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A clean slate: a previous run's services (ours, by their pid files) and data go.
svc down >/dev/null 2>&1 || true
rm -rf "$RUN"
mkdir -p "$RUN"
log "bench: starting a private MariaDB (127.0.0.1:$M_PORT) and tansu (127.0.0.1:$K_PORT)"
svc up >"$RUN/services.log" 2>&1 || { cat "$RUN/services.log" >&2; die "could not start the bench services"; }
eval "$(svc env)"
BROKERS="127.0.0.1:$K_PORT"

sql() {
    mariadb --no-defaults --socket="$SLUICE_MARIADB_SOCKET" --user=root --default-character-set=utf8mb4 -N -B "$@"
}

# Restarts tansu empty (memory storage keeps every record in RAM).
kafka_fresh() {
    local pid i
    pid="$(cat "$SVC/tansu/tansu.pid" 2>/dev/null || true)"
    if [[ $pid =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null)" == tansu ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == tansu ]] || break
            sleep 0.1
        done
        [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == tansu ]] && kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    svc up >>"$RUN/services.log" 2>&1 || { tail -n 20 "$RUN/services.log" >&2; die "could not restart tansu"; }
}

topic_create() {
    "$SLUICE_TANSU_BIN" topic create "$1" --broker "tcp://$BROKERS" --partitions "$PARTITIONS" >/dev/null
}

# record PHASE WHAT RUN [JSON...]: appends one measurement to results.jsonl.
record() { python3 bench/tool.py record "$RUN/results.jsonl" "$@"; }

# measure NAME CMD...: runs CMD under bench/measure.py; prints measure.py's JSON. Never fails.
measure() {
    local name=$1
    shift
    python3 bench/measure.py --stdout "$RUN/$name.out" --stderr "$RUN/$name.err" -- "$@" || {
        log "bench: $name failed; the end of its stderr ($RUN/$name.err):"
        tail -n 5 "$RUN/$name.err" | sed 's/^/    /' >&2
    }
}

# task_file NAME TOPIC [START [INCLUDE [LOAD]]]: a sluice task reading the bench database (or the
# objects INCLUDE names) into TOPIC; with LOAD = true, an initial load first (else none, said
# explicitly: newer sluice loads by default when the task has no start_position).
task_file() {
    local name=$1 topic=$2 start=${3:-} include=${4:-bench.*} data=${5:-false}
    rm -rf "$RUN/data-$name"
    {
        echo "name = \"bench-$name\""
        echo "data_dir = \"$RUN/data-$name\""
        echo "[source]"
        echo "host = \"127.0.0.1\""
        echo "port = $M_PORT"
        echo "user = \"$SLUICE_MARIADB_USER\""
        echo "password_env = \"SLUICE_BENCH_PASSWORD\""
        echo "server_id = 4343"
        [[ -n $start ]] && echo "start_position = \"$start\""
        echo "[target]"
        echo "brokers = [\"$BROKERS\"]"
        echo "topic = \"$topic\""
        echo "partition_policy = \"$POLICY\""
        echo "compression = \"lz4\""
        echo "idempotence = \"on\""
        echo "[objects]"
        echo "include = [\"$include\"]"
        echo "[initial_load]"
        echo "data = $data"
        if [[ $data == true && ${LOAD_PARALLELISM_OK:-no} == yes ]]; then echo "load_parallelism = $LOAD_PARALLELISM"; fi
    } >"$RUN/$name.toml"
    echo "$RUN/$name.toml"
}
export SLUICE_BENCH_PASSWORD="$SLUICE_MARIADB_PASSWORD"

# binlog_settled: waits until the binlog end stops moving for 1 s (MariaDB writes a
# BINLOG_CHECKPOINT event some time after a rotation or a load); prints "FILE POS".
binlog_settled() {
    local now last="" i
    for ((i = 0; i < 300; i++)); do
        now="$(sql -e "SHOW MASTER STATUS" | cut -f1,2)"
        [[ $now == "$last" ]] && break
        last=$now
        sleep 1
    done
    printf '%s\n' "$now"
}

# load PHASE KIND ROWS: a fresh binlog file, then the load; sets FILE and LOADED.
#
# The load ends with a one-row transaction on benchmeta.marker (outside the bench database, so
# no reader counts it), written once the binlog has settled: `sluice run --stop-at-end` stops at
# the first transaction end at or past the binlog end it saw at start-up, and a binlog that ends
# with a BINLOG_CHECKPOINT event (no transaction end) would keep it waiting.
load() {
    local phase=$1 kind=$2 rows=$3 t0 t1 bytes
    sql -e "FLUSH BINARY LOGS"
    FILE="$(binlog_settled | cut -f1)"
    log "bench: $phase: writing $rows row changes ($kind) into $FILE"
    t0=$(date +%s.%N)
    python3 bench/gen_load.py "$kind" "$rows" 2>"$RUN/$phase-load.rows" | sql
    t1=$(date +%s.%N)
    binlog_settled >/dev/null
    sql -e "INSERT INTO benchmeta.marker VALUES (NULL, '$phase')"
    [[ "$(binlog_settled | cut -f1)" == "$FILE" ]] || die "the binlog rotated during the $phase load: raise max_binlog_size"
    LOADED="$(awk '/^rows/ { print $2 }' "$RUN/$phase-load.rows")"
    bytes="$(sql -e "SHOW BINARY LOGS" | awk -v f="$FILE" '$1 == f { print $2 }')"
    record "$phase" binlog 0 "{\"rows\": $LOADED, \"file\": \"$FILE\", \"bytes\": $bytes, \"load_s\": $(awk "BEGIN { print $t1 - $t0 }")}"
}

# sluice_catch_up PHASE RUN null|kafka: one catch-up from FILE:4 to the binlog end.
sluice_catch_up() {
    local phase=$1 run=$2 sink=$3 topic="bench.$1.$3.$2" cfg flags=() m
    # The null sink sends nothing, but sluice's start-up checks want the topic all the same.
    if [[ $sink == kafka ]]; then kafka_fresh; else flags=(--null-sink); fi
    topic_create "$topic"
    cfg="$(task_file "$phase-$sink-$run" "$topic" "$FILE:4")"
    m="$(measure "$phase-sluice-$sink-$run" "$SLUICE" run --config "$cfg" --stop-at-end "${flags[@]}")"
    record "$phase" "sluice_$sink" "$run" "{\"rows\": $LOADED}" "$m"
    log "bench: $phase run $run: sluice $sink: $(summary "$m" "$LOADED")"
    LAST_TOPIC=$topic
}

# summary MEASURE_JSON ROWS: "N rows/s in S s, peak RSS M MB, exit E".
summary() { python3 bench/tool.py summary "$1" "$2"; }

# throughput PHASE KIND ROWS
throughput() {
    local phase=$1 kind=$2 rows=$3 run m out
    load "$phase" "$kind" "$rows"
    for ((run = 1; run <= REPEAT; run++)); do
        sluice_catch_up "$phase" "$run" null
        sluice_catch_up "$phase" "$run" kafka
        if [[ ! -s $RUN/$phase.records ]]; then
            log "bench: $phase: dumping sluice's $LOADED records for the raw producer"
            "$EXAMPLES/raw_producer" dump --brokers "$BROKERS" --topic "$LAST_TOPIC" --count "$LOADED" \
                --out "$RUN/$phase.records" >/dev/null
        fi
        kafka_fresh
        topic_create "bench.$phase.raw.$run"
        m="$(measure "$phase-raw-$run" "$EXAMPLES/raw_producer" produce --brokers "$BROKERS" \
            --topic "bench.$phase.raw.$run" --in "$RUN/$phase.records")"
        out="$(cat "$RUN/$phase-raw-$run.out")"
        record "$phase" raw_producer "$run" "$m" "$out"
        log "bench: $phase run $run: raw producer: $(python3 bench/tool.py get "$out" msgs_per_sec 0) msgs/s"

        m="$(measure "$phase-mariadb-binlog-$run" mariadb-binlog --no-defaults --read-from-remote-server \
            --host=127.0.0.1 --port="$M_PORT" --user="$SLUICE_MARIADB_USER" --password="$SLUICE_MARIADB_PASSWORD" \
            --verbose "$FILE")"
        record "$phase" mariadb_binlog "$run" "{\"rows\": $LOADED}" "$m"
        log "bench: $phase run $run: mariadb-binlog: $(summary "$m" "$LOADED")"

        if ((run <= PY_REPEAT)); then
            m="$(measure "$phase-python-$run" "$VENV/bin/python" bench/pyrepl.py 127.0.0.1 "$M_PORT" \
                "$SLUICE_MARIADB_USER" "$SLUICE_MARIADB_PASSWORD" 4344 "$FILE" 4)"
            out="$(cat "$RUN/$phase-python-$run.out")"
            record "$phase" python "$run" "{\"rows\": $LOADED}" "$m" \
                "{\"rows_seen\": $(python3 bench/tool.py get "$out" rows 0)}"
            log "bench: $phase run $run: python-mysql-replication: $(summary "$m" "$LOADED")"
        fi
    done
    rm -f "$RUN/$phase.records"
}

bigtxn() {
    local run
    load bigtxn bigtxn "$BIGTXN_ROWS"
    for ((run = 1; run <= REPEAT; run++)); do
        sluice_catch_up bigtxn "$run" null
        sluice_catch_up bigtxn "$run" kafka
    done
}

latency() {
    local run cfg topic i m probe
    for ((run = 1; run <= REPEAT; run++)); do
        kafka_fresh
        topic="bench.latency.$run"
        topic_create "$topic"
        cfg="$(task_file "latency-$run" "$topic")" # no start position: the binlog end
        rm -f "$RUN/latency.pid"
        python3 bench/measure.py --pid-file "$RUN/latency.pid" --stdout "$RUN/latency-sluice-$run.out" \
            --stderr "$RUN/latency-sluice-$run.err" -- "$SLUICE" run --config "$cfg" >"$RUN/latency-measure-$run.json" &
        LATENCY_MEASURE_PID=$!
        for ((i = 0; i < 300; i++)); do
            grep -q "streaming the binlog" "$RUN/latency-sluice-$run.err" 2>/dev/null && break
            kill -0 "$LATENCY_MEASURE_PID" 2>/dev/null || break
            sleep 0.1
        done
        grep -q "streaming the binlog" "$RUN/latency-sluice-$run.err" 2>/dev/null ||
            { cat "$RUN/latency-sluice-$run.err" >&2; die "sluice did not start streaming for the latency run"; }
        log "bench: latency run $run: $LAT_RATE rows/s for $((LAT_SECONDS + LAT_WARMUP)) s"
        probe="$("$EXAMPLES/latency_probe" --mysql-url "mysql://$SLUICE_MARIADB_ADMIN_USER:$SLUICE_MARIADB_ADMIN_PASSWORD@127.0.0.1:$M_PORT/bench?prefer_socket=false" \
            --brokers "$BROKERS" --topic "$topic" --rate "$LAT_RATE" --batch 50 \
            --seconds "$((LAT_SECONDS + LAT_WARMUP))" --warmup "$LAT_WARMUP" 2>"$RUN/latency-probe-$run.err")" ||
            { cat "$RUN/latency-probe-$run.err" >&2; probe="{\"error\": \"probe failed\"}"; }
        kill -TERM "$(cat "$RUN/latency.pid")" 2>/dev/null || true
        wait "$LATENCY_MEASURE_PID" || true
        LATENCY_MEASURE_PID=""
        m="$(cat "$RUN/latency-measure-$run.json")"
        record latency latency "$run" "$m" "$probe"
        log "bench: latency run $run: $probe"
    done
}

# load_parallelism_supported: whether the binary's task files accept [initial_load]
# load_parallelism (the config rejects unknown keys; check-config parses without connecting).
load_parallelism_supported() {
    local cfg
    cfg="$(LOAD_PARALLELISM_OK=yes task_file probe bench.probe "" "bench.*" true)"
    "$SLUICE" check-config --config "$cfg" >/dev/null 2>"$RUN/probe.err"
}

# initial_load_table SHAPE ROWS: fills benchload.<table> (without binlog), then REPEAT times:
# sluice's initial load of it with the null sink and into Kafka, and mariadb-dump of it.
initial_load_table() {
    local shape=$1 rows=$2 phase="load_$1" table t0 t1 bytes run sink topic cfg flags m ll
    table=$([[ $shape == narrow ]] && echo t10 || echo wide)
    log "bench: $phase: filling benchload.$table with $rows rows (no binlog)"
    t0=$(date +%s.%N)
    python3 bench/gen_load.py table "$shape" "$rows" 2>/dev/null | sql >/dev/null
    t1=$(date +%s.%N)
    bytes="$(sql -e "SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'benchload' AND TABLE_NAME = '$table'")"
    LOADED="$(sql -e "SELECT COUNT(*) FROM benchload.$table")" # also reads it into the buffer pool
    record "$phase" table 0 "{\"rows\": $LOADED, \"table\": \"benchload.$table\", \"bytes\": $bytes, \"load_s\": $(awk "BEGIN { print $t1 - $t0 }")}"
    for ((run = 1; run <= REPEAT; run++)); do
        for sink in null kafka; do
            topic="bench.$phase.$sink.$run"
            flags=(--log-format json run)
            if [[ $sink == kafka ]]; then kafka_fresh; else flags+=(--null-sink); fi
            topic_create "$topic"
            cfg="$(task_file "$phase-$sink-$run" "$topic" "" "benchload.$table" true)"
            m="$(measure "$phase-sluice-$sink-$run" timeout 900 "$SLUICE" "${flags[@]}" --config "$cfg" --stop-at-end)"
            ll="$(python3 bench/tool.py loadlog "$RUN/$phase-sluice-$sink-$run.err")"
            [[ $ll == "{}" ]] && log "bench: $phase run $run: sluice $sink: no \"initial load complete\" line in $RUN/$phase-sluice-$sink-$run.err"
            record "$phase" "sluice_$sink" "$run" "{\"rows\": $LOADED}" "$m" "$ll"
            log "bench: $phase run $run: sluice $sink: load $(python3 bench/tool.py get "$ll" load_rows_per_sec "?") rows/s ($(python3 bench/tool.py get "$ll" load_rows "?") rows in $(python3 bench/tool.py get "$ll" load_s "?") s); process: $(summary "$m" "$LOADED")"
        done
        m="$(python3 bench/measure.py --stderr "$RUN/$phase-dump-$run.err" -- mariadb-dump --no-defaults \
            --host=127.0.0.1 --port="$M_PORT" --user="$SLUICE_MARIADB_USER" --password="$SLUICE_MARIADB_PASSWORD" \
            --default-character-set=utf8mb4 --quick --single-transaction --skip-lock-tables --no-tablespaces \
            benchload "$table")" || { log "bench: $phase: mariadb-dump failed:"; tail -n 5 "$RUN/$phase-dump-$run.err" >&2; }
        record "$phase" mariadb_dump "$run" "{\"rows\": $LOADED}" "$m"
        log "bench: $phase run $run: mariadb-dump: $(summary "$m" "$LOADED")"
    done
}

initial_load() {
    # The tables are read from memory (the default 128 MB pool would not hold them): every
    # reader below reads the same warm table.
    sql -e "SET GLOBAL innodb_buffer_pool_size = 1073741824"
    if load_parallelism_supported; then LOAD_PARALLELISM_OK=yes; else LOAD_PARALLELISM_OK=no; fi
    log "bench: load: load_parallelism accepted by $SLUICE: $LOAD_PARALLELISM_OK"
    python3 - "$RUN/facts.json" "$LOAD_PARALLELISM_OK" "$LOAD_PARALLELISM" "$(sql -e "SELECT @@innodb_buffer_pool_size")" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
f["load_parallelism"] = int(sys.argv[3]) if sys.argv[2] == "yes" else None
f["innodb_buffer_pool_mb"] = int(sys.argv[4]) // 1048576
json.dump(f, open(sys.argv[1], "w"))
PY
    if [[ $LOAD_ROWS -gt 0 ]]; then initial_load_table narrow "$LOAD_ROWS"; fi
    if [[ $LOAD_WIDE_ROWS -gt 0 ]]; then initial_load_table wide "$LOAD_WIDE_ROWS"; fi
}

# ---------------------------------------------------------------------------------------------
# machine facts, the phases, the table

busy_processes() {
    # Processes using over 10% of a core during one second, other than this script's own.
    top -b -n 2 -d 1 -w 200 | awk '/^top -/ { n++ } n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 10 { printf "%s %s%%, ", $12, $9 }' | sed 's/, $//'
}

sql -e "SELECT VERSION()" >"$RUN/mariadb.version"
sql <<<"$(python3 bench/gen_load.py schema)"
python3 - "$RUN/facts.json" <<PY
import json, os, platform, subprocess, sys, datetime
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
facts = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "command": """$COMMAND""".strip(),
    "commit": sh("git rev-parse --short HEAD"),
    "dirty": bool(sh("git status --porcelain --untracked-files=no")),
    "cpu": sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor(),
    "cores": os.cpu_count(),
    "memory": sh("free -g | awk '/^Mem:/ { print \$2 \" GiB\" }'"),
    "kernel": platform.release(),
    "os": sh(". /etc/os-release && echo \$PRETTY_NAME"),
    "rustc": sh("rustc --version"),
    "mariadb": open("$RUN/mariadb.version").read().strip(),
    "tansu": sh("$SLUICE_TANSU_BIN --version"),
    "librdkafka": "bundled with rdkafka-sys " + sh("awk '/name = \"rdkafka-sys\"/ { getline; print \$3 }' Cargo.lock").strip('"'),
    "python": sh("$VENV/bin/python --version"),
    "mysql_replication": sh("$VENV/bin/pip show mysql-replication | sed -n 's/^Version: //p'"),
    "load_before": open("/proc/loadavg").read().split()[0:3],
    "other_processes": "at start: " + ("""$(busy_processes)""" or "none over 10%"),
    "partitions": $PARTITIONS,
    "policy": "$POLICY",
    "latency_rate": $LAT_RATE,
    "sluice_bin": "$SLUICE",
}
facts["load_before"] = " ".join(facts["load_before"]) + " (1, 5, 15 min) at start"
json.dump(facts, open(sys.argv[1], "w"))
PY

for phase in $PHASES; do
    case $phase in
    narrow) if [[ $ROWS -gt 0 ]]; then throughput narrow narrow "$ROWS"; fi ;;
    wide) if [[ $WIDE_ROWS -gt 0 ]]; then throughput wide wide "$WIDE_ROWS"; fi ;;
    bigtxn) if [[ $BIGTXN_ROWS -gt 0 ]]; then bigtxn; fi ;;
    latency) if [[ $LAT_SECONDS -gt 0 ]]; then latency; fi ;;
    load) initial_load ;;
    *) die "unknown phase '$phase'" ;;
    esac
done

python3 - "$RUN/facts.json" "$(busy_processes)" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
f["load_after"] = " ".join(open("/proc/loadavg").read().split()[0:3]) + " (1, 5, 15 min) at the end"
f["other_processes"] += "; at the end: " + (sys.argv[2] or "none over 10%")
json.dump(f, open(sys.argv[1], "w"))
PY

python3 bench/report.py "$RUN" >"$RUN/results.md"
cat "$RUN/results.md"
if [[ $SAVE -eq 1 ]]; then
    [[ -n $OUT ]] || OUT="bench/results/$(date -u +%Y-%m-%d-%H%M).md"
    mkdir -p "$(dirname "$OUT")"
    cp "$RUN/results.md" "$OUT"
    log "bench: results written to $OUT"
fi
