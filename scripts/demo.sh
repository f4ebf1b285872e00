#!/usr/bin/env bash
# The demo: brings up the local services (MariaDB + a Kafka-protocol broker), creates a sample
# `shop` database with a few rows, runs sluice on it (structure init creates the topic, the
# initial load copies the rows, then the binlog streams), writes a few rounds of orders and
# prints each DTS Avro record as it arrives in Kafka, decoded to JSON.
#
# usage: scripts/demo.sh [ROUNDS]     (default 5 rounds; Ctrl-C stops early)
# Leaves the services running afterwards (scripts/services.sh down stops them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

rounds="${1:-5}"
[[ $rounds =~ ^[0-9]+$ ]] || die "ROUNDS must be a number, got '$rounds'"

ensure_packages "${SLUICE_SERVICE_PACKAGES[@]}"
need_cargo
scripts/services.sh up >/dev/null
eval "$(scripts/services.sh env)"

log "building sluice (release)"
cargo build --release --quiet -p sluice
sluice=target/release/sluice

demo=.sluice/demo
rm -rf "$demo"
mkdir -p "$demo"
topic="sluice.demo.$(date +%s)"

sql() {
    mariadb -h "$SLUICE_MARIADB_HOST" -P "$SLUICE_MARIADB_PORT" -u "$SLUICE_MARIADB_ADMIN_USER" \
        -p"$SLUICE_MARIADB_ADMIN_PASSWORD" --default-character-set=utf8mb4 -e "$1"
}
sql "DROP DATABASE IF EXISTS shop; CREATE DATABASE shop;
     CREATE TABLE shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer VARCHAR(64),
       amount DECIMAL(10,2), status ENUM('new','paid','shipped'), created DATETIME(3));
     CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64), email VARCHAR(128));
     INSERT INTO shop.customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Linus', 'linus@example.com');"

cat >"$demo/task.toml" <<TOML
name = "demo"
data_dir = "$demo/data"
emit_ddl = true
[source]
host = "$SLUICE_MARIADB_HOST"
port = $SLUICE_MARIADB_PORT
user = "$SLUICE_MARIADB_USER"
password_env = "SLUICE_DEMO_PASSWORD"
server_id = 4242
[target]
brokers = ["$SLUICE_KAFKA_BROKERS"]
topic = "$topic"
partition_policy = "table"
partitions = 3
[objects]
include = ["shop.*"]
TOML

export SLUICE_DEMO_PASSWORD="$SLUICE_MARIADB_PASSWORD"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$sluice" run --config "$demo/task.toml" 2>"$demo/sluice.log" &
pids+=($!)

# Wait until the initial load is done and sluice streams (from the binlog end at its start).
for ((i = 0; i < 300; i++)); do
    grep -q "streaming the binlog" "$demo/sluice.log" && break
    grep -q "sluice: error" "$demo/sluice.log" && { cat "$demo/sluice.log" >&2; die "sluice failed to start"; }
    sleep 0.1
done
# The topic exists now (structure init created it): print every record from its start.
"$sluice" tail --config "$demo/task.toml" --from-beginning 2>>"$demo/sluice.log" &
pids+=($!)
log "sluice is streaming (log: $demo/sluice.log); writing $rounds rounds of changes"

sql "INSERT INTO shop.customers VALUES (3, 'Grace', 'grace@example.com')"
for ((r = 1; r <= rounds; r++)); do
    sql "BEGIN;
         INSERT INTO shop.orders (customer, amount, status, created) VALUES ('Ada', 19.99 * $r, 'new', NOW(3));
         UPDATE shop.orders SET status = 'paid' WHERE id = $r;
         COMMIT;"
    [[ $r -gt 1 ]] && sql "DELETE FROM shop.orders WHERE id = $((r - 1)) AND status = 'paid'"
    sleep 1
done
sql "UPDATE shop.customers SET email = 'ada@lovelace.dev' WHERE id = 1"
sleep 2
log "done: the records above are what a DTS consumer receives (topic $topic)"
log "status of the sync: $demo/sluice.log; stop the services with scripts/services.sh down"
