#!/usr/bin/env python3
"""Small JSON helpers for scripts/bench.sh.

usage: tool.py record FILE PHASE WHAT RUN [JSON...]   append one measurement (JSON objects merged)
       tool.py summary MEASURE_JSON ROWS              "N rows/s in S s, peak RSS M MB, exit E"
       tool.py get JSON KEY [DEFAULT]                 one field of a JSON object
       tool.py loadlog STDERR_FILE                    sluice's "initial load complete" figures as
                                                      JSON: load_rows, load_rows_per_sec, load_s
                                                      ({} when the line is missing)
"""
import json
import re
import sys


def parse(text: str) -> dict:
    text = text.strip()
    return json.loads(text) if text else {}


def load_log(path: str) -> dict:
    """The figures of sluice's "initial load complete" log line (JSON or human log format)."""
    fields = None
    with open(path, errors="replace") as f:
        for line in f:
            if "initial load complete" not in line:
                continue
            try:
                d = json.loads(line)
                fields = d.get("fields", d)
            except ValueError:  # the human format: key=value pairs
                fields = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    if not fields or "rows" not in fields or "rows_per_sec" not in fields:
        return {}
    rows, rate = int(float(fields["rows"])), float(fields["rows_per_sec"])
    # `seconds` in the line is rounded to whole seconds; rows / rows_per_sec is not.
    return {"load_rows": rows, "load_rows_per_sec": rate, "load_s": round(rows / rate, 4) if rate else None}


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        path, phase, what, run = args[:4]
        d = {"phase": phase, "what": what, "run": int(run)}
        for extra in args[4:]:
            d.update(parse(extra))
        with open("/proc/loadavg") as f:
            d["load1"] = float(f.read().split()[0])
        with open(path, "a") as f:
            f.write(json.dumps(d) + "\n")
    elif cmd == "summary":
        m, rows = parse(args[0]), int(args[1])
        if "wall_s" not in m:
            print("no measurement")
            return
        print(f"{rows / m['wall_s']:,.0f} rows/s in {m['wall_s']:.2f} s, "
              f"peak RSS {m['maxrss_kb'] / 1024:.0f} MB, exit {m['exit']}")
    elif cmd == "get":
        d = parse(args[0])
        print(d.get(args[1], args[2] if len(args) > 2 else ""))
    elif cmd == "loadlog":
        print(json.dumps(load_log(args[0])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
