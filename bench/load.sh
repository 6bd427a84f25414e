#!/usr/bin/env bash
# Assignment and event throughput of one `pilotgate serve` on SQLite with
# durable commits, measured on loopback with wrk, each beside the same
# server's /healthz rate in the same run (the ceiling of the HTTP stack here).
#
# usage: bench/load.sh [SECONDS]   (default 10 per measurement)
#        PROFILE=NAME bench/load.sh  also records the server with `perf` during
#        the measurement NAME (healthz, assign_new, assign_repeat, events,
#        events_whole_seconds) into
#        bench/out/load/NAME.perf.data (read it with `perf report -i FILE`).
#        BIN=path/to/pilotgate RESULTS=file bench/load.sh  measures another
#        build and writes its table to `file`: run two builds one after the
#        other to compare them on the same machine state.
# Goals (issue 5, 2 cores): repeat assignments >= 50% of /healthz,
# first-time assignments >= 5,000/s, events >= 100,000/s in batches of 500.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
out="bench/out/load"
mkdir -p "$out"
rm -f "$out"/pilotgate.db*

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/pilotgate}"
export PILOTGATE_DATABASE_URL="sqlite://$PWD/$out/pilotgate.db"
export PILOTGATE_PSEUDONYM_KEY="1:$(printf '5a%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_KEY="$(printf 'a7%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_ANCHOR_FILE="${PILOTGATE_AUDIT_ANCHOR_FILE:-$PWD/bench/out/pilotgate.anchor}"
export PILOTGATE_BIND=127.0.0.1:18181
export PILOTGATE_MAX_BODY_BYTES=4194304
export RUST_LOG=warn
base="http://$PILOTGATE_BIND"
threads=2
connections=16

. bench/lib/serve.sh
ingest=$("$bin" token create --role ingest --name loadgen 2>/dev/null)

call POST /api/v1/purposes "$compliance" '{"key":"personalize.content","description":"load","allowed_bases":["consent"],"min_notice_version":1,"retention_days":365}'
call POST /api/v1/experiments "$marketer" '{"key":"load","name":"Load","hypothesis":"h","purpose":"personalize.content","variants":[{"key":"control","weight":1},{"key":"v1","weight":1}],"coverage":1.0,"primary_metric":{"event":"purchase","kind":"sum"},"mde":0.05,"alpha":0.05,"power":0.8,"data_categories":["orders"],"retention_days":90}'
call POST /api/v1/experiments/load/submit "$marketer"
call POST /api/v1/experiments/load/approve "$compliance" '{"design_version":1,"comment":"load test"}'
call POST /api/v1/experiments/load/start "$marketer"

# Consents for every subject the first-time run may ask for (thread i uses ids i*10^7 + n).
python3 - "$out/consents.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("user_id,purpose,basis,status,notice_id,notice_version,collected_at\n")
    for thread in range(2):
        for n in range(1, 150001):
            f.write(f"u{thread * 10_000_000 + n},personalize.content,consent,granted,pn,1,2026-01-01T00:00:00Z\n")
PY
"$bin" consents import "$out/consents.csv" 2>&1 | tail -n 1

# Runs wrk; prints "requests_per_second p50_ms p99_ms".
measure() { # NAME SCRIPT_OR_EMPTY PATH
  local name="$1" script="$2" path="$3" args=(-t"$threads" -c"$connections" -d"${seconds}s" --latency)
  [ -n "$script" ] && args+=(-s "bench/wrk/$script")
  local recorder=""
  if [ "${PROFILE:-}" = "$name" ]; then
    command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
    perf record -q -g -p "$server" -o "$out/$name.perf.data" -- sleep "$seconds" 2>/dev/null &
    recorder=$!
  fi
  local written_before written_after
  written_before=$(awk '/^wchar/ {print $2}' "/proc/$server/io")
  TOKEN="$ingest" wrk "${args[@]}" "$base$path" > "$out/$name.txt"
  written_after=$(awk '/^wchar/ {print $2}' "/proc/$server/io")
  if [ -n "$recorder" ]; then wait "$recorder"; fi
  python3 - "$out/$name.txt" $((written_after - written_before)) <<'PY'
import re, sys
text = open(sys.argv[1]).read()
written = int(sys.argv[2])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(q):
    m = re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)\b", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
requests = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{rps:.0f} {ms(50):.2f} {ms(99):.2f} {errors.group(1) if errors else 0} {written / max(requests, 1):.0f}")
PY
}

read -r h_rps h_p50 h_p99 h_err h_w < <(measure healthz "" /healthz)
read -r n_rps n_p50 n_p99 n_err n_w < <(measure assign_new assign_new.lua /api/v1/assign)
# Thread 0 assigned about half of the first-time requests: its first ids form the repeat pool.
pool=$(python3 -c "print(max(1000, int($n_rps * $seconds / $threads * 0.9)))")
read -r r_rps r_p50 r_p99 r_err r_w < <(REPEAT_POOL=$pool measure assign_repeat assign_repeat.lua /api/v1/assign)
read -r e_rps e_p50 e_p99 e_err e_w < <(REPEAT_POOL=$pool BATCH=500 measure events events.lua /api/v1/events)
read -r s_rps s_p50 s_p99 s_err s_w < <(RUN=1 TIMES=s REPEAT_POOL=$pool BATCH=500 measure events_whole_seconds events.lua /api/v1/events)
read -r h2_rps h2_p50 h2_p99 h2_err h2_w < <(measure healthz_after "" /healthz)
rss=$(ps -o rss= -p "$server" | tr -d ' ')

python3 - <<PY | tee "${RESULTS:-bench/results/load.md}"
h = ($h_rps + $h2_rps) / 2
rows = [
    ("GET /healthz (ceiling)", $h_rps, $h_p50, $h_p99, $h_err, $h_w, 1, None),
    ("first-time assignments", $n_rps, $n_p50, $n_p99, $n_err, $n_w, 1, "≥ 5,000/s"),
    ("repeat assignments", $r_rps, $r_p50, $r_p99, $r_err, $r_w, 1, "≥ 50% of /healthz"),
    ("events, batches of 500", $e_rps, $e_p50, $e_p99, $e_err, $e_w, 500, "≥ 100,000 events/s"),
    ("events, batches of 500, times in whole seconds", $s_rps, $s_p50, $s_p99, $s_err, $s_w, 500, "(worst case)"),
    ("GET /healthz, after", $h2_rps, $h2_p50, $h2_p99, $h2_err, $h2_w, 1, None),
]
print("## load on loopback, SQLite with durable commits, $(nproc) cores, wrk -t$threads -c$connections -d${seconds}s, release build")
print()
print("| what | requests/s | items/s | p50 ms | p99 ms | non-2xx | share of /healthz rate | bytes written per item | goal |")
print("|---|---|---|---|---|---|---|---|---|")
for name, rps, p50, p99, err, written, per, goal in rows:
    print(f"| {name} | {rps:,.0f} | {rps*per:,.0f} | {p50:.2f} | {p99:.2f} | {err} | {rps/h:.0%} | {written/per:,.0f} | {goal or ''} |")
print()
print(f"repeat pool: $pool subjects; server RSS at the end: {$rss/1024:.0f} MiB; bytes written: by the server's write calls (WAL, checkpoints, logs)")
if any(row[4] for row in rows):
    print("WARNING: some requests failed (non-2xx): these rates do not measure the work")
PY
