#!/usr/bin/env python3
"""Insert cost of three layouts of the events table, side by side in one run.

Each layout gets the same events: durable commits (WAL, synchronous=FULL) of
8,000 events each, subjects drawn from 11,000 random 64-hex pseudonyms (like
bench/load.sh), occurrence times increasing, as ingestion sees them. Reports
events per second and the bytes written per event (this process's write
calls: WAL and checkpoints), which is what limits a random-keyed B-tree.

  rowid+2     a rowid table, UNIQUE (event_id, pilot), a covering index by
              (pilot, subject, ...): the layout until migration 0005
  subject     WITHOUT ROWID, key (pilot, subject, event id): migrations 0005-0006
  time        WITHOUT ROWID, key (pilot, occurred_at, subject, event id): 0007

usage: bench/events_layout.py [EVENTS]   (default 960000)
Uses Python's own SQLite, not the one built into pilotgate.
"""
import hashlib
import os
import random
import sqlite3
import sys
import tempfile
import time

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 960_000
PER_COMMIT = 8_000
COLUMNS = "experiment_key, occurred_at, subject, event_id, name, value, received_at"
LAYOUTS = {
    "rowid+2": (
        [
            "CREATE TABLE events (id INTEGER PRIMARY KEY, experiment_key TEXT NOT NULL, occurred_at INTEGER NOT NULL, "
            "subject TEXT NOT NULL, event_id TEXT NOT NULL, name TEXT NOT NULL, value REAL, received_at INTEGER NOT NULL, "
            "UNIQUE (event_id, experiment_key))",
            "CREATE INDEX covering ON events (experiment_key, subject, name, occurred_at, value)",
        ],
        "(event_id, experiment_key)",
        lambda r: (r[0], r[2], r[3]),
    ),
    "subject": (
        [
            "CREATE TABLE events (experiment_key TEXT NOT NULL, occurred_at INTEGER NOT NULL, subject TEXT NOT NULL, "
            "event_id TEXT NOT NULL, name TEXT NOT NULL, value REAL, received_at INTEGER NOT NULL, "
            "PRIMARY KEY (experiment_key, subject, event_id)) WITHOUT ROWID"
        ],
        "(experiment_key, subject, event_id)",
        lambda r: (r[0], r[2], r[3]),
    ),
    "time": (
        [
            "CREATE TABLE events (experiment_key TEXT NOT NULL, occurred_at INTEGER NOT NULL, subject TEXT NOT NULL, "
            "event_id TEXT NOT NULL, name TEXT NOT NULL, value REAL, received_at INTEGER NOT NULL, "
            "PRIMARY KEY (experiment_key, occurred_at, subject, event_id)) WITHOUT ROWID"
        ],
        "(experiment_key, occurred_at, subject, event_id)",
        lambda r: (r[0], r[1], r[2], r[3]),
    ),
}


def written() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("wchar")).split()[1])


def main() -> None:
    rng = random.Random(1)
    subjects = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(11_000)]
    t0 = 1_767_225_600_000_000
    # About 30,000 events a second, occurrence times to the second, as wrk sends them.
    events = [
        ("load", t0 + (n // 30_000) * 1_000_000, rng.choice(subjects), f"t0-{n % 2}-{n // 2}", "purchase", 12.5, t0 + n)
        for n in range(EVENTS)
    ]
    print(f"## events table layouts: {EVENTS:,} events in commits of {PER_COMMIT:,}, SQLite {sqlite3.sqlite_version}, WAL, synchronous=FULL")
    print()
    print("| layout | events/s | × rowid+2 | bytes written per event |")
    print("|---|---|---|---|")
    base = None
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        for name, (schema, conflict, key) in LAYOUTS.items():
            db = sqlite3.connect(os.path.join(tmp, f"{name}.db"), isolation_level=None)
            for pragma in ("journal_mode = WAL", "synchronous = FULL", "cache_size = -65536"):
                db.execute(f"PRAGMA {pragma}")
            for statement in schema:
                db.execute(statement)
            sql = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT {conflict} DO NOTHING"
            batches = [sorted(events[i : i + PER_COMMIT], key=key) for i in range(0, EVENTS, PER_COMMIT)]
            before, started = written(), time.perf_counter()
            for batch in batches:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(sql, batch)
                db.execute("COMMIT")
            rate = EVENTS / (time.perf_counter() - started)
            per_event = (written() - before) / EVENTS
            db.close()
            base = base or rate
            print(f"| {name} | {rate:,.0f} | {rate / base:.1f} | {per_event:,.0f} |")


if __name__ == "__main__":
    main()
