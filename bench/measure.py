#!/usr/bin/env python3
"""Runs one command and records how long it took and how much memory it used.

usage: measure.py [--pid-file F] [--stdout F] [--stderr F] -- COMMAND [ARGS...]

Prints one JSON object on stdout: wall seconds (from just before the fork to the exit), the
child's peak RSS (ru_maxrss of that child alone, via wait4), its user and system CPU seconds,
and its exit status. The command's own output goes to the given files (default /dev/null).
Exits with the command's status. SIGTERM/SIGINT sent to this process are passed to the child.
"""
import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    args = sys.argv[1:]
    opts = {"--pid-file": None, "--stdout": os.devnull, "--stderr": os.devnull}
    while args and args[0] != "--":
        if args[0] not in opts or len(args) < 2:
            sys.exit(f"measure.py: unknown or incomplete option {args[0]!r}")
        opts[args[0]] = args[1]
        args = args[2:]
    if not args or len(args) < 2:
        sys.exit("usage: measure.py [--pid-file F] [--stdout F] [--stderr F] -- COMMAND [ARGS...]")
    cmd = args[1:]
    with open(opts["--stdout"], "wb") as out, open(opts["--stderr"], "wb") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        if opts["--pid-file"]:
            with open(opts["--pid-file"], "w") as f:
                f.write(f"{child.pid}\n")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda s, _f: child.send_signal(s))
        while True:
            try:
                _, status, usage = os.wait4(child.pid, 0)
                break
            except InterruptedError:
                continue
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({
        "wall_s": round(wall, 4),
        "maxrss_kb": usage.ru_maxrss,
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "exit": code,
    }))
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
