#!/usr/bin/env python3
"""Baseline: python-mysql-replication (PyPI `mysql-replication`) reading a binlog.

usage: pyrepl.py HOST PORT USER PASSWORD SERVER_ID LOG_FILE [LOG_POS]

Streams from LOG_FILE:LOG_POS (default 4) to the end of the binlog (non-blocking dump), decodes
every row of every WRITE/UPDATE/DELETE rows event into Python values (touching each row, as a
consumer would), and prints {"rows": N, "events": M} as JSON. Run it under bench/measure.py.
"""
import json
import sys

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent


def main() -> None:
    host, port, user, password, server_id, log_file = sys.argv[1:7]
    log_pos = int(sys.argv[7]) if len(sys.argv) > 7 else 4
    stream = BinLogStreamReader(
        connection_settings={"host": host, "port": int(port), "user": user, "passwd": password},
        server_id=int(server_id),
        log_file=log_file,
        log_pos=log_pos,
        resume_stream=True,
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=["bench"],
    )
    rows = events = 0
    for event in stream:
        events += 1
        for row in event.rows:
            rows += 1
            # Each row is a dict of decoded values ("values", or "before_values"/"after_values").
            if not row:
                raise SystemExit("empty row")
    stream.close()
    print(json.dumps({"rows": rows, "events": events}))


if __name__ == "__main__":
    main()
