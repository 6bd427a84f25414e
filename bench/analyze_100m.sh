#!/usr/bin/env bash
# `pilotgate analyze` on 100M events (10M users x 10 events per user, made
# once in bigdata.py's shape into bench/out/analyze100m, see below), Parquet
# and CSV, beside DuckDB + gbstats on the same files: its in-process time as
# peers.py prints it (peers.py reads the CSV files; for the Parquet files the
# same query reads them with read_parquet), alternated three times (one
# round takes about a minute here; five would double it for little).
# Reports wall time, peak memory (GNU time %M) and each time against the
# single-pass read limit (the files' bytes at the measured `cat > /dev/null`
# speed, warm page cache).
#
# usage: bench/analyze_100m.sh [USERS] [EVENTS_PER_USER] [RUNS]   (default 10000000 10 3)
# Goal (issue 25): Parquet in bounded memory, peak RSS under 2 GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-10000000}"
per_user="${2:-10}"
runs="${3:-3}"
out="bench/out/analyze100m"
venv="${PILOTGATE_ORACLE_VENV:-/var/tmp/pilotgate-oracle-venv}"
mkdir -p "$out"

[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if ! "$venv/bin/python" -c "import gbstats, polars, duckdb, pandas" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "gbstats==0.8.0" polars duckdb pandas
fi
# BIN=path/to/pilotgate measures another build (e.g. a copy that a build
# running beside the benchmark cannot replace).
if [ -z "${BIN:-}" ]; then cargo build --release --quiet --bin pilotgate; fi
bin="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/pilotgate}"
# The data: bigdata.py's shape (its columns, formats and distributions: two
# arms, purchases at 2% x (1 + 0.1 x arm), gamma values, times from a day
# before to a week after the assignment), written in chunks of 10M events.
# bigdata.py itself holds every event in memory at once (it passed 19 GiB of
# this machine's 23 GiB at 100M events before it was stopped).
if [ ! -f "$out/events.parquet" ] || [ "$(cat "$out/size" 2>/dev/null)" != "$users $per_user" ]; then
  free_gib=$(df -BG --output=avail "$out" | tail -n 1 | tr -dc 0-9)
  [ "$free_gib" -ge 15 ] || { echo "only ${free_gib} GiB free under $out; 15 needed" >&2; exit 1; }
  rm -f "$out/size"
  "$venv/bin/python" - "$out" "$users" "$per_user" <<'PY'
import os, sys
import numpy as np, polars as pl
out, users, epu = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = np.random.default_rng(42)
T0 = 1_767_225_600
fmt = "%Y-%m-%dT%H:%M:%SZ"
arm = rng.integers(0, 2, users)
assigned = T0 + rng.integers(0, 14 * 86400, users)
subject = lambda ids: (pl.lit("u") + pl.Series(ids).cast(pl.String)).alias("subject")
a = pl.select(subject(np.arange(users)),
              variant=pl.Series(np.where(arm == 0, "control", "treatment")),
              assigned_at=pl.from_epoch(pl.Series(assigned), "s"))
a.with_columns(pl.col("assigned_at").dt.strftime(fmt)).write_csv(f"{out}/assignments.csv")
a.write_parquet(f"{out}/assignments.parquet")
del a
total, chunk = int(users * epu), 10_000_000
os.makedirs(f"{out}/parts", exist_ok=True)
parts = []
with open(f"{out}/events.csv", "wb") as csv:
    for k, start in enumerate(range(0, total, chunk)):
        ne = min(chunk, total - start)
        who = rng.integers(0, users, ne)
        is_buy = rng.random(ne) < (0.02 * (1 + 0.1 * arm[who]))
        t = assigned[who] + rng.integers(-86400, 7 * 86400, ne)
        e = pl.select(subject(who),
                      event=pl.Series(np.where(is_buy, "purchase", "page_view")),
                      value=pl.Series(np.where(is_buy, np.round(rng.gamma(2.0, 20.0, ne), 2), 0.0)),
                      occurred_at=pl.from_epoch(pl.Series(t), "s"))
        e.with_columns(pl.col("occurred_at").dt.strftime(fmt)).write_csv(csv, include_header=k == 0)
        parts.append(f"{out}/parts/events-{k}.parquet")
        e.write_parquet(parts[-1])
pl.scan_parquet(parts).sink_parquet(f"{out}/events.parquet")
for part in parts:
    os.remove(part)
os.rmdir(f"{out}/parts")
print(f"{users} users, {total} events -> {out}")
PY
  echo "$users $per_user" > "$out/size"
fi

# DuckDB in-process on the Parquet twins: peers.py's query and gbstats call,
# with read_parquet for read_csv_auto.
cat > "$out/duckdb_parquet.py" <<'PY'
import sys, time
from gbstats.models.statistics import ProportionStatistic
from gbstats.frequentist.tests import TwoSidedTTest, FrequentistConfig
d = sys.argv[1]
t0 = time.perf_counter()
import duckdb
q = f"""
with a as (select * from read_parquet('{d}/assignments.parquet')),
     c as (select distinct e.subject from read_parquet('{d}/events.parquet') e join a using(subject)
           where e.event='purchase' and e.occurred_at >= a.assigned_at)
select variant, count(*), count(c.subject) from a left join c using(subject) group by variant"""
rows = {v: (n, float(s)) for v, n, s in duckdb.sql(q).fetchall()}
r = TwoSidedTTest(ProportionStatistic(n=rows["control"][0], sum=rows["control"][1]),
                  ProportionStatistic(n=rows["treatment"][0], sum=rows["treatment"][1]),
                  FrequentistConfig()).compute_result()
print(f"duckdb: {time.perf_counter()-t0:.2f} s  lift={r.expected:.4f} ci={r.ci}")
PY

# Runs a command under GNU time; prints "seconds peak_MiB".
measure() {
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > "$out/last.txt" 2>&1 || { cat "$out/last.txt"; exit 1; }
  awk '{ printf "%s %.0f\n", $1, $2 / 1024 }' "$out/time.txt"
}
# DuckDB's own time (as printed) with the process's peak memory.
measure_duckdb() {
  local process
  process=$(measure "$@")
  echo "$process" >> "$out/$name-process.runs"
  awk -v peak="$(echo "$process" | cut -d' ' -f2)" '{ print $2, peak }' "$out/last.txt"
}
# The median of lines "seconds ..." (by time).
median() { sort -n | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'; }

analyze() {
  measure "$bin" analyze --assignments "$out/assignments.$1" --events "$out/events.$1" \
    --metric purchase --control control --format json
}
# The machine is shared: its load average is recorded beside the results.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for name in pilotgate-parquet pilotgate-csv duckdb-parquet duckdb-csv duckdb-parquet-process duckdb-csv-process; do
  : > "$out/$name.runs"
done
for _ in $(seq 1 "$runs"); do
  analyze parquet >> "$out/pilotgate-parquet.runs"; cp "$out/last.txt" "$out/pilotgate-parquet.json"
  name=duckdb-parquet measure_duckdb "$venv/bin/python" "$out/duckdb_parquet.py" "$out" >> "$out/duckdb-parquet.runs"
  duck_parquet_line=$(cat "$out/last.txt")
  analyze csv >> "$out/pilotgate-csv.runs"; cp "$out/last.txt" "$out/pilotgate-csv.json"
  name=duckdb-csv measure_duckdb "$venv/bin/python" ../shared/reference/peers.py "$out" duckdb >> "$out/duckdb-csv.runs"
  duck_csv_line=$(cat "$out/last.txt")
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The single-pass read limit of each pair of files, warm in the page cache.
read_limit() {
  local files=("$out/assignments.$1" "$out/events.$1")
  cat "${files[@]}" > /dev/null
  for _ in 1 2 3; do
    local t0=$EPOCHREALTIME
    cat "${files[@]}" > /dev/null
    awk -v t0="$t0" -v t1="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", t1 - t0 }'
  done | median
}
read -r pq_read_s < <(read_limit parquet)
read -r csv_read_s < <(read_limit csv)
pq_bytes=$(cat "$out/assignments.parquet" "$out/events.parquet" | wc -c)
csv_bytes=$(cat "$out/assignments.csv" "$out/events.csv" | wc -c)

row() { median < "$out/$1.runs"; }
"$venv/bin/python" - "$out" "$runs" <<PY | tee bench/results/analyze_100m.md
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
pq, csv = json.load(open(f"{out}/pilotgate-parquet.json")), json.load(open(f"{out}/pilotgate-csv.json"))
limit = {"Parquet": ($pq_bytes, $pq_read_s), "CSV": ($csv_bytes, $csv_read_s)}
duck = {"Parquet": float("$(row duckdb-parquet)".split()[0]), "CSV": float("$(row duckdb-csv)".split()[0])}
print(f"## pilotgate analyze, $users users x $per_user events per user, $(nproc) cores, release build")
print()
print(f"Medians of {runs} alternating runs. DuckDB's time is its own work as peers.py prints it")
print("(without Python's start-up and imports; for Parquet, peers.py's query with read_parquet);")
print("its whole process and peak memory are reported apart. Read limit: the two files' bytes at the")
print("measured single-pass \`cat > /dev/null\` speed (warm page cache).")
print()
print("| run | format | seconds | peak MiB | vs DuckDB in-process | x read limit |")
print("|---|---|---|---|---|---|")
rows = [("pilotgate (whole process)", "Parquet", "$(row pilotgate-parquet)"),
        ("DuckDB + gbstats, in-process", "Parquet", "$(row duckdb-parquet)"),
        ("DuckDB + gbstats, whole Python process", "Parquet", "$(row duckdb-parquet-process)"),
        ("pilotgate (whole process)", "CSV", "$(row pilotgate-csv)"),
        ("DuckDB + gbstats, in-process", "CSV", "$(row duckdb-csv)"),
        ("DuckDB + gbstats, whole Python process", "CSV", "$(row duckdb-csv-process)")]
for name, fmt, line in rows:
    s, mb = float(line.split()[0]), int(line.split()[1])
    print(f"| {name} | {fmt} | {s:.2f} | {mb} | {s / duck[fmt]:.2f} | {s / limit[fmt][1]:.1f} |")
print()
for fmt, (b, s) in limit.items():
    print(f"Read limit, {fmt}: {b / 2**20:.0f} MiB in {s:.2f} s ({b / 2**20 / max(s, 1e-9):.0f} MiB/s, median of 3).")
print()
lift = pq["comparisons"][0]["relative"]
print(f"pilotgate lift {lift['estimate']:.4f} ci {lift['ci']}; Parquet and CSV agree: {pq['comparisons'] == csv['comparisons']}")
print("DuckDB (last runs): Parquet $duck_parquet_line / CSV $duck_csv_line")
print("Peak memory goal: under 2 GiB (2048 MiB).")
print("Load average (1, 5, 15 min) before / after the runs: $load_before / $load_after.")
PY
