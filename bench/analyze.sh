#!/usr/bin/env bash
# `pilotgate analyze` on 1M users / 10M events, CSV and Parquet, beside the
# same analysis done the way a pandas or DuckDB user with gbstats would
# (../shared/reference/peers.py), in one run; wall time and peak memory.
#
# usage: bench/analyze.sh [USERS] [EVENTS_PER_USER]   (default 1000000 10)
# Goals (issue 6): CSV at most half of DuckDB's time, Parquet under 1 s,
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
cargo build --release --quiet
bin="$PWD/target/release/pilotgate"
if [ ! -f "$out/events.parquet" ] || [ "$(cat "$out/size" 2>/dev/null)" != "$users $per_user" ]; then
  "$venv/bin/python" ../shared/reference/bigdata.py "$out" "$users" "$per_user"
  echo "$users $per_user" > "$out/size"
fi

# Runs a command under GNU time; prints "seconds peak_MiB".
measure() {
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > "$out/last.txt" 2>&1 || { cat "$out/last.txt"; exit 1; }
  awk '{ printf "%s %.0f\n", $1, $2 / 1024 }' "$out/time.txt"
}

# The median of five runs (by time) of a command: "seconds peak_MiB". The
# machine is noisy: single runs of the same command vary by up to 2x.
median5() {
  for _ in 1 2 3 4 5; do measure "$@"; done | sort -n | sed -n 3p
}

read -r csv_s csv_mb < <(median5 "$bin" analyze --assignments "$out/assignments.csv" --events "$out/events.csv" --metric purchase --control control --format json)
cp "$out/last.txt" "$out/pilotgate-csv.json"
read -r pq_s pq_mb < <(median5 "$bin" analyze --assignments "$out/assignments.parquet" --events "$out/events.parquet" --metric purchase --control control --format json)
cp "$out/last.txt" "$out/pilotgate-parquet.json"
read -r duck_s duck_mb < <(median5 "$venv/bin/python" ../shared/reference/peers.py "$out" duckdb)
duck_line=$(cat "$out/last.txt")
read -r pandas_s pandas_mb < <(measure "$venv/bin/python" ../shared/reference/peers.py "$out" pandas)
pandas_line=$(cat "$out/last.txt")

"$venv/bin/python" - "$out" <<PY | tee bench/results/analyze.md
import json, sys
out = sys.argv[1]
csv, pq = json.load(open(f"{out}/pilotgate-csv.json")), json.load(open(f"{out}/pilotgate-parquet.json"))
lift = csv["comparisons"][0]["relative"]
print("## pilotgate analyze, $users users x $per_user events per user, $(nproc) cores, release build")
print()
print("| run | seconds | peak MiB | vs DuckDB (time) | goal |")
print("|---|---|---|---|---|")
rows = [("pilotgate, CSV", $csv_s, $csv_mb, "≤ 0.5 × DuckDB"), ("pilotgate, Parquet", $pq_s, $pq_mb, "< 1 s"),
        ("DuckDB + gbstats (CSV)", $duck_s, $duck_mb, ""), ("pandas + gbstats (CSV)", $pandas_s, $pandas_mb, "")]
for name, s, mb, goal in rows:
    print(f"| {name} | {s:.2f} | {mb} | {s / $duck_s:.2f} | {goal} |")
print()
print(f"pilotgate lift {lift['estimate']:.4f} ci {lift['ci']}; CSV and Parquet agree: {csv['comparisons'] == pq['comparisons']}")
print("peers: $duck_line / $pandas_line")
print("Peak memory goal: under 1.5 GiB (1536 MiB). Times include process start and file reading;")
print("pilotgate and DuckDB: median of 5 runs each, pandas: one run.")
PY
