#!/usr/bin/env python3
"""Turns the measurements of one scripts/bench.sh run into the markdown results table.

usage: report.py RUN_DIR > results.md

RUN_DIR holds facts.json (machine and run settings) and results.jsonl (one JSON object per
measurement, written by scripts/bench.sh). Throughput figures show the best run in bold and
every run after it; peak RSS is the highest of all runs.
"""
import json
import sys
from pathlib import Path

PHASE_TITLES = {
    "narrow": "narrow: 10 columns",
    "wide": "wide: 40 columns (~1.5 KB rows)",
    "load_narrow": "benchload.t10 (narrow, 10 columns)",
    "load_wide": "benchload.wide (wide, 40 columns)",
}


def fmt_rate(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"


def fmt_mb(kb: float) -> str:
    return f"{kb / 1024:.0f} MB"


def rate_of(r: dict) -> float:
    if r["what"] == "raw_producer":
        return r["messages"] / r["secs"]
    return r["rows"] / r["wall_s"]


def main() -> None:
    run = Path(sys.argv[1])
    facts = json.loads((run / "facts.json").read_text())
    results = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line.strip()]

    def runs(phase: str, what: str) -> list:
        return [r for r in results if r["phase"] == phase and r["what"] == what]

    def best(phase: str, what: str):
        rs = [r for r in runs(phase, what) if r.get("exit", 0) == 0]
        return max((rate_of(r) for r in rs), default=None)

    def cell(phase: str, what: str, unit: str = "rows/s") -> str:
        rs = runs(phase, what)
        if not rs:
            return "–"
        ok = [rate_of(r) for r in rs if r.get("exit", 0) == 0]
        failed = len(rs) - len(ok)
        if not ok:
            return f"failed ({failed} runs)"
        text = f"**{fmt_rate(max(ok))}** {unit}"
        if len(ok) > 1:
            text += " (" + ", ".join(fmt_rate(v) for v in ok) + ")"
        if failed:
            text += f", {failed} failed"
        return text

    def ratio(a, b, pct=False) -> str:
        if a is None or b is None or b == 0:
            return "–"
        return f"{100 * a / b:.0f}%" if pct else f"×{a / b:.2f}"

    out = []
    p = out.append
    p(f"# sluice benchmark, {facts['date']}")
    p("")
    p(f"`{facts['command']}` at commit `{facts['commit']}`{' (with uncommitted changes)' if facts.get('dirty') else ''}.")
    p("")
    p("## Machine and conditions")
    p("")
    p("| | |")
    p("|---|---|")
    for k in ["cpu", "cores", "memory", "kernel", "os", "rustc", "mariadb", "tansu", "librdkafka", "python", "mysql_replication", "sluice_bin", "load_before", "load_after", "other_processes"]:
        if facts.get(k) not in (None, ""):
            p(f"| {k.replace('_', ' ')} | {facts[k]} |")
    p("")
    p("Broker: tansu (memory storage) on the same machine, restarted empty before every Kafka run; topic with "
      f"{facts['partitions']} partitions, partition policy `{facts['policy']}`. Producer settings (sluice's sink and "
      "the raw producer alike): acks=all, enable.idempotence=true, compression lz4, linger.ms 5, batch.num.messages "
      "10000. Source: a private MariaDB started for the run (binlog ROW, FULL images, FULL metadata). "
      "Rates are row changes over the wall-clock time of the whole process (start-up, connecting and the final "
      "flush included), except the raw producer's: its time runs from creating the producer (connection and "
      "producer-id request included) to the last delivery report, excluding reading its input file.")
    p("")

    phases = [ph for ph in ("narrow", "wide") if runs(ph, "binlog")]
    if phases:
        p("## Throughput: catch-up from the start of the load to the end of the binlog")
        p("")
        head = "| figure | " + " | ".join(
            f"{PHASE_TITLES[ph]}, {runs(ph, 'binlog')[0]['rows']:,} changes" for ph in phases) + " |"
        p(head)
        p("|---|" + "---:|" * len(phases))

        def row(label, f):
            p(f"| {label} | " + " | ".join(f(ph) for ph in phases) + " |")

        row("binlog (rows events, one file)", lambda ph: f"{runs(ph, 'binlog')[0]['bytes'] / 1e6:.0f} MB")
        row("load applied by MariaDB in", lambda ph: f"{runs(ph, 'binlog')[0]['load_s']:.0f} s")
        row("sluice, null sink (decode + DTS Avro encode)", lambda ph: cell(ph, "sluice_null"))
        row("sluice → Kafka (acknowledged)", lambda ph: cell(ph, "sluice_kafka"))
        row("mariadb-binlog --verbose → /dev/null", lambda ph: cell(ph, "mariadb_binlog"))
        row("python-mysql-replication (rows decoded)", lambda ph: cell(ph, "python"))
        row("raw idempotent producer, the same records", lambda ph: cell(ph, "raw_producer", "msgs/s"))
        row("*sluice null / mariadb-binlog*", lambda ph: ratio(best(ph, "sluice_null"), best(ph, "mariadb_binlog")))
        row("*sluice null / python-mysql-replication*", lambda ph: ratio(best(ph, "sluice_null"), best(ph, "python")))
        row("*sluice → Kafka / mariadb-binlog*", lambda ph: ratio(best(ph, "sluice_kafka"), best(ph, "mariadb_binlog")))
        row("*sluice → Kafka / raw producer*", lambda ph: ratio(best(ph, "sluice_kafka"), best(ph, "raw_producer"), pct=True))

        def avg_size(ph):
            rs = runs(ph, "raw_producer")
            return f"{rs[0]['value_bytes'] / rs[0]['messages']:.0f} B" if rs else "–"

        row("average record (Avro value)", avg_size)

        def rss(ph, what):
            rs = runs(ph, what)
            return fmt_mb(max(r["maxrss_kb"] for r in rs)) if rs else "–"

        row("sluice peak RSS, null sink", lambda ph: rss(ph, "sluice_null"))
        row("sluice peak RSS, → Kafka", lambda ph: rss(ph, "sluice_kafka"))

        def cpu(ph, what):
            rs = [r for r in runs(ph, what) if r.get("exit", 0) == 0]
            if not rs:
                return "–"
            r = max(rs, key=rate_of)
            return f"{(r['user_s'] + r['sys_s']) / r['rows'] * 1e6:.2f} s"

        row("sluice CPU per 1M rows, null sink (best run)", lambda ph: cpu(ph, "sluice_null"))
        row("sluice CPU per 1M rows, → Kafka (best run)", lambda ph: cpu(ph, "sluice_kafka"))
        p("")

    if runs("bigtxn", "binlog"):
        n = runs("bigtxn", "binlog")[0]["rows"]
        p(f"## One transaction of {n:,} rows (narrow table)")
        p("")
        p("| figure | rate | peak RSS |")
        p("|---|---:|---:|")
        for what, label in (("sluice_null", "sluice, null sink"), ("sluice_kafka", "sluice → Kafka")):
            rs = runs("bigtxn", what)
            if rs:
                p(f"| {label} | {cell('bigtxn', what)} | {fmt_mb(max(r['maxrss_kb'] for r in rs))} |")
        p("")

    load_phases = [ph for ph in ("load_narrow", "load_wide") if runs(ph, "table")]
    if load_phases:
        par = facts.get("load_parallelism")
        p("## Initial load: copying an existing table (`[initial_load] data = true`)")
        p("")
        p("Each table alone (the task includes only it), filled beforehand without binlog and read from the "
          f"InnoDB buffer pool ({facts.get('innodb_buffer_pool_mb', '?')} MB). `sluice run --stop-at-end` loads it "
          "in primary-key chunks of 8192 rows (the default chunk_size), "
          + (f"load_parallelism = {par}, " if par else "load_parallelism not supported by this binary (tables one at a time), ")
          + "then streams from the load's start position and stops there. **load rows/s** = rows / the load's own "
          "time, from sluice's \"initial load complete\" log line (from the start of the first table's load to "
          "the acknowledgement of its last chunk; process start-up, the load plan and the stream's start and stop "
          "excluded); **process rows/s** = rows / "
          "wall time of the whole process, comparable with the baseline's. Baseline: `mariadb-dump --quick "
          "--single-transaction` of the same table over TCP to /dev/null (one consistent snapshot, extended INSERTs).")
        p("")
        p("| figure | " + " | ".join(f"{PHASE_TITLES[ph]}, {runs(ph, 'table')[0]['rows']:,} rows" for ph in load_phases) + " |")
        p("|---|" + "---:|" * len(load_phases))

        def lrow(label, f):
            p(f"| {label} | " + " | ".join(f(ph) for ph in load_phases) + " |")

        def load_rate(r):
            return r.get("load_rows_per_sec")

        def load_cell(ph, what):
            rs = [r for r in runs(ph, what) if r.get("exit", 0) == 0 and load_rate(r)]
            if not rs:
                return "–" if not runs(ph, what) else "failed"
            rates = [load_rate(r) for r in rs]
            text = f"**{fmt_rate(max(rates))}** rows/s"
            if len(rates) > 1:
                text += " (" + ", ".join(fmt_rate(v) for v in rates) + ")"
            return text

        def best_load(ph, what):
            return max((load_rate(r) for r in runs(ph, what) if r.get("exit", 0) == 0 and load_rate(r)), default=None)

        lrow("table size (InnoDB data)", lambda ph: f"{runs(ph, 'table')[0]['bytes'] / 1e6:.0f} MB")
        lrow("table filled by MariaDB in", lambda ph: f"{runs(ph, 'table')[0]['load_s']:.0f} s")
        lrow("sluice, null sink: load rows/s (read + DTS Avro encode)", lambda ph: load_cell(ph, "sluice_null"))
        lrow("sluice, null sink: process rows/s", lambda ph: cell(ph, "sluice_null"))
        lrow("sluice → Kafka (acknowledged): load rows/s", lambda ph: load_cell(ph, "sluice_kafka"))
        lrow("sluice → Kafka: process rows/s", lambda ph: cell(ph, "sluice_kafka"))
        lrow("mariadb-dump --quick → /dev/null (baseline)", lambda ph: cell(ph, "mariadb_dump"))
        lrow("*sluice null / mariadb-dump (process rows/s)*", lambda ph: ratio(best(ph, "sluice_null"), best(ph, "mariadb_dump")))
        lrow("*sluice → Kafka / mariadb-dump (process rows/s)*", lambda ph: ratio(best(ph, "sluice_kafka"), best(ph, "mariadb_dump")))
        lrow("*sluice null load rows/s / mariadb-dump*", lambda ph: ratio(best_load(ph, "sluice_null"), best(ph, "mariadb_dump")))
        lrow("*sluice → Kafka load rows/s / mariadb-dump*", lambda ph: ratio(best_load(ph, "sluice_kafka"), best(ph, "mariadb_dump")))

        def lrss(ph, what):
            rs = runs(ph, what)
            return fmt_mb(max(r["maxrss_kb"] for r in rs)) if rs else "–"

        def lcpu(ph, what):
            rs = [r for r in runs(ph, what) if r.get("exit", 0) == 0]
            if not rs:
                return "–"
            r = max(rs, key=rate_of)
            return f"{(r['user_s'] + r['sys_s']) / r['rows'] * 1e6:.2f} s"

        lrow("sluice peak RSS, null sink", lambda ph: lrss(ph, "sluice_null"))
        lrow("sluice peak RSS, → Kafka", lambda ph: lrss(ph, "sluice_kafka"))
        lrow("mariadb-dump peak RSS", lambda ph: lrss(ph, "mariadb_dump"))
        lrow("sluice CPU per 1M rows, null sink (best run)", lambda ph: lcpu(ph, "sluice_null"))
        lrow("sluice CPU per 1M rows, → Kafka (best run)", lambda ph: lcpu(ph, "sluice_kafka"))
        lrow("mariadb-dump CPU per 1M rows (best run)", lambda ph: lcpu(ph, "mariadb_dump"))
        p("")

    lat = runs("latency", "latency")
    if lat:
        p(f"## Latency: source commit → Kafka acknowledgement at a steady {facts['latency_rate']:,} rows/s")
        p("")
        p("Upper bound: from the row's `NOW(6)` (statement start, before the commit) to its arrival at a consumer "
          "(a record is fetchable only after the broker acknowledged it). Warm-up excluded. "
          "commit → send: to the producer's message timestamp (when sluice handed the record to librdkafka).")
        p("")
        p("| run | rate achieved | rows measured | p50 | p90 | p99 | p99.9 | max | commit → send p50 / p99 | sluice peak RSS |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, r in enumerate(lat, 1):
            if r.get("ack_p50_ms") is None:
                p(f"| {i} | failed: {r.get('error', '?')} | | | | | | | | |")
                continue
            p(f"| {i} | {r['rate_achieved']:,.0f} rows/s | {r['rows_measured']:,} | {r['ack_p50_ms']:.1f} ms | "
              f"{r['ack_p90_ms']:.1f} ms | **{r['ack_p99_ms']:.1f} ms** | {r['ack_p999_ms']:.1f} ms | {r['ack_max_ms']:.1f} ms | "
              f"{r['send_p50_ms']:.1f} / {r['send_p99_ms']:.1f} ms | {fmt_mb(r['maxrss_kb'])} |")
        p("")

    # Targets (issue 8).
    p("## Targets")
    p("")
    p("| target | measured | met |")
    p("|---|---|:-:|")

    def mark(ok):
        return "–" if ok is None else ("yes" if ok else "**no**")

    null = best("narrow", "sluice_null")
    kafka = best("narrow", "sluice_kafka")
    raw = best("narrow", "raw_producer")
    if null is not None:
        p(f"| null sink ≥ 2M rows/s (narrow) | {fmt_rate(null)} rows/s | {mark(null >= 2e6)} |")
    if kafka is not None:
        p(f"| → Kafka ≥ 400k rows/s (narrow) | {fmt_rate(kafka)} rows/s | {mark(kafka >= 4e5)} |")
    if kafka is not None and raw:
        p(f"| → Kafka ≥ 70% of the raw idempotent producer (narrow) | {100 * kafka / raw:.0f}% of {fmt_rate(raw)} msgs/s | {mark(kafka / raw >= 0.7)} |")
    sluice_runs = [r for r in results if r["what"] in ("sluice_null", "sluice_kafka", "latency") and "maxrss_kb" in r]
    if sluice_runs:
        worst = max(sluice_runs, key=lambda r: r["maxrss_kb"])
        p(f"| peak RSS ≤ 150 MB in every phase | highest {fmt_mb(worst['maxrss_kb'])} ({worst['phase']}, {worst['what']}) | {mark(worst['maxrss_kb'] <= 150 * 1024)} |")
    good_lat = [r for r in lat if r.get("ack_p99_ms") is not None]
    if good_lat:
        p99 = min(r["ack_p99_ms"] for r in good_lat)
        p(f"| p99 commit → ack ≤ 100 ms at {facts['latency_rate']:,} rows/s | {p99:.1f} ms (best run) | {mark(p99 <= 100)} |")
    p("")

    p("## Every measurement")
    p("")
    p("| phase | what | run | rows | wall s | rate | peak RSS | CPU user+sys s | notes |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        if r["what"] in ("binlog", "table"):
            continue
        notes = []
        if r.get("exit", 0) != 0:
            notes.append(f"exit {r['exit']}")
        if r["what"] == "raw_producer":
            notes.append(f"{r['messages']:,} msgs in {r['secs']:.2f} s, first ack after {r['first_ack_ms']:.0f} ms, queue full {r['queue_full']:,}×")
        if r.get("load_rows_per_sec"):
            notes.append(f"initial load: {r['load_rows']:,} rows in {r['load_s']:.2f} s = {fmt_rate(r['load_rows_per_sec'])} rows/s")
        elif r["what"] in ("sluice_null", "sluice_kafka") and r["phase"].startswith("load_"):
            notes.append("no \"initial load complete\" line")
        if r["what"] == "latency" and r.get("ack_p99_ms") is not None:
            notes.append(f"p50 {r['ack_p50_ms']:.1f} ms, p99 {r['ack_p99_ms']:.1f} ms")
        rows = r.get("rows", r.get("messages", r.get("rows_inserted", 0)))
        rate = fmt_rate(rate_of(r)) if r["what"] not in ("latency",) and r.get("exit", 0) == 0 else ""
        cpu = f"{r.get('user_s', 0) + r.get('sys_s', 0):.2f}" if "user_s" in r else ""
        rss = fmt_mb(r["maxrss_kb"]) if "maxrss_kb" in r else ""
        p(f"| {r['phase']} | {r['what']} | {r.get('run', '')} | {rows:,} | {r.get('wall_s', '')} | {rate} | {rss} | {cpu} | {'; '.join(notes)} |")
    p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
