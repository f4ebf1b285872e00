#!/usr/bin/env python3
"""Small JSON helpers for scripts/bench.sh.

usage: tool.py record FILE PHASE WHAT RUN [JSON...]   append one measurement (JSON objects merged)
       tool.py summary MEASURE_JSON ROWS              "N rows/s in S s, peak RSS M MB, exit E"
       tool.py get JSON KEY [DEFAULT]                 one field of a JSON object
"""
import json
import sys


def parse(text: str) -> dict:
    text = text.strip()
    return json.loads(text) if text else {}


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
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
