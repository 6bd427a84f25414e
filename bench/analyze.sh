#!/usr/bin/env bash
# `pilotgate analyze` on 1M users / 10M events, CSV and Parquet, beside the
# same analysis done the way a pandas or DuckDB user with gbstats would
# (../shared/reference/peers.py), in one run; wall time and peak memory.
#
# usage: bench/analyze.sh [USERS] [EVENTS_PER_USER]   (default 1000000 10)
# Goals (issues 6, 25): CSV at most half of DuckDB's in-process time (as
# peers.py prints it; its whole process is reported apart), Parquet under 1 s,
# peak memory under 1.5 GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-1000000}"
per_user="${2:-10}"
out="bench/out/analyze"
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
if [ ! -f "$out/events.parquet" ] || [ "$(cat "$out/size" 2>/dev/null)" != "$users $per_user" ]; then
  "$venv/bin/python" ../shared/reference/bigdata.py "$out" "$users" "$per_user"
  echo "$users $per_user" > "$out/size"
fi

# Runs a command under GNU time; prints "seconds peak_MiB".
measure() {
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > "$out/last.txt" 2>&1 || { cat "$out/last.txt"; exit 1; }
  awk '{ printf "%s %.0f\n", $1, $2 / 1024 }' "$out/time.txt"
}

# The median (by time) of lines "seconds ...".
median() { sort -n | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'; }

# pilotgate on the CSV and DuckDB on the same files, alternated five times
# (the machine is noisy: single runs vary by up to 2x, and alternating
# spreads its moods over both). DuckDB's time is its own work as
# peers.py prints it (after Python's start-up and imports); its whole
# process is reported apart.
# The machine is shared: its load average is recorded beside the results.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$out/pilotgate-csv.runs"; : > "$out/duckdb.runs"; : > "$out/duckdb-process.runs"
for _ in 1 2 3 4 5; do
  measure "$bin" analyze --assignments "$out/assignments.csv" --events "$out/events.csv" \
    --metric purchase --control control --format json >> "$out/pilotgate-csv.runs"
  cp "$out/last.txt" "$out/pilotgate-csv.json"
  measure "$venv/bin/python" ../shared/reference/peers.py "$out" duckdb >> "$out/duckdb-process.runs"
  duck_line=$(cat "$out/last.txt")
  read -r peak < <(tail -n 1 "$out/duckdb-process.runs" | awk '{print $2}')
  echo "$duck_line" | awk -v peak="$peak" '{ print $2, peak }' >> "$out/duckdb.runs"
done
read -r csv_s csv_mb < <(median < "$out/pilotgate-csv.runs")
read -r duck_s duck_mb < <(median < "$out/duckdb.runs")
read -r duck_proc_s _ < <(median < "$out/duckdb-process.runs")
read -r pq_s pq_mb < <(for _ in 1 2 3 4 5; do measure "$bin" analyze --assignments "$out/assignments.parquet" --events "$out/events.parquet" --metric purchase --control control --format json; done | median)
cp "$out/last.txt" "$out/pilotgate-parquet.json"
read -r pandas_s pandas_mb < <(measure "$venv/bin/python" ../shared/reference/peers.py "$out" pandas)
pandas_line=$(cat "$out/last.txt")

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The limit of reading the files: one pass over them, warm in the page
# cache, at this machine's measured single-pass read speed (median of 5).
read_limit() {
  local files=("$out/assignments.$1" "$out/events.$1")
  cat "${files[@]}" > /dev/null
  for _ in 1 2 3 4 5; do
    local t0=$EPOCHREALTIME
    cat "${files[@]}" > /dev/null
    awk -v t0="$t0" -v t1="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", t1 - t0 }'
  done | median
}
bytes=$(cat "$out/assignments.csv" "$out/events.csv" | wc -c)
pq_bytes=$(cat "$out/assignments.parquet" "$out/events.parquet" | wc -c)
read -r read_s < <(read_limit csv)
read -r pq_read_s < <(read_limit parquet)

"$venv/bin/python" - "$out" <<PY | tee bench/results/analyze.md
import json, sys
out = sys.argv[1]
csv, pq = json.load(open(f"{out}/pilotgate-csv.json")), json.load(open(f"{out}/pilotgate-parquet.json"))
lift = csv["comparisons"][0]["relative"]
duck = $duck_s
print("## pilotgate analyze, $users users x $per_user events per user, $(nproc) cores, release build")
print()
print("pilotgate's whole process against DuckDB's own work on the same CSV files (its in-process time, as")
print("peers.py prints it: without Python's start-up and imports); medians of 5 alternating runs.")
print()
print("| run | seconds | peak MiB | vs DuckDB in-process | x read limit | goal |")
print("|---|---|---|---|---|---|")
read_s, pq_read_s = max($read_s, 1e-4), max($pq_read_s, 1e-4)
rows = [("pilotgate, CSV (whole process)", $csv_s, $csv_mb, read_s, "≤ 0.5 × DuckDB"),
        ("pilotgate, Parquet (whole process)", $pq_s, $pq_mb, pq_read_s, "< 1 s"),
        ("DuckDB + gbstats, in-process (CSV)", duck, $duck_mb, read_s, ""),
        ("DuckDB + gbstats, whole Python process (CSV)", $duck_proc_s, $duck_mb, read_s, ""),
        ("pandas + gbstats, whole process, one run (CSV)", $pandas_s, $pandas_mb, read_s, "")]
for name, s, mb, limit, goal in rows:
    print(f"| {name} | {s:.2f} | {mb} | {s / duck:.2f} | {s / limit:.1f} | {goal} |")
print()
print(f"Read limit (one \`cat > /dev/null\` of both files, warm page cache, median of 5): CSV"
      f" {$bytes / 2**20:.0f} MiB in {read_s:.3f} s ({$bytes / 2**20 / read_s:.0f} MiB/s),"
      f" Parquet {$pq_bytes / 2**20:.0f} MiB in {pq_read_s:.3f} s ({$pq_bytes / 2**20 / pq_read_s:.0f} MiB/s).")
print()
print(f"pilotgate lift {lift['estimate']:.4f} ci {lift['ci']}; CSV and Parquet agree: {csv['comparisons'] == pq['comparisons']}")
print("peers (last runs): $duck_line / $pandas_line")
print("Peak memory goal: under 1.5 GiB (1536 MiB).")
print("Load average (1, 5, 15 min) before / after the runs: $load_before / $load_after.")
PY
