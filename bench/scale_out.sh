#!/usr/bin/env bash
# Scale-out on PostgreSQL (issue 25): first-time assignments and event
# batches per second with one `pilotgate serve` and with two (each on its own
# port, one wrk per instance, run at the same time), all on one PostgreSQL
# on this machine (loopback), in one run. Reports each rate, the two-instance
# rate as a multiple of the one-instance rate, and where the CPU went (the
# servers', PostgreSQL's and wrk's shares of the machine over each
# measurement, from /proc), which names the bottleneck.
#
# usage: bench/scale_out.sh [SECONDS]   (default 10 per measurement)
#        PILOTGATE_BENCH_PG=postgres://postgres@127.0.0.1:5432 (the server; a
#        database pilotgate_scale is made anew there)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
out="bench/out/scale_out"
mkdir -p "$out"
pg="${PILOTGATE_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v psql >/dev/null || { echo "psql is needed" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/pilotgate}"

psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS pilotgate_scale" -c "CREATE DATABASE pilotgate_scale"
export PILOTGATE_DATABASE_URL="$pg/pilotgate_scale"
export PILOTGATE_PSEUDONYM_KEY="1:$(printf '5a%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_KEY="$(printf 'a7%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_ANCHOR_FILE="$PWD/$out/pilotgate.anchor"
export PILOTGATE_MAX_BODY_BYTES=4194304
export RUST_LOG=warn
rm -f "$PILOTGATE_AUDIT_ANCHOR_FILE"

"$bin" migrate 2>/dev/null
compliance=$("$bin" token create --role compliance --name dpo 2>/dev/null)
marketer=$("$bin" token create --role marketer --name mia 2>/dev/null)
ingest=$("$bin" token create --role ingest --name loadgen 2>/dev/null)
servers=()
trap 'kill "${servers[@]}" 2>/dev/null || true' EXIT
start_server() { # PORT
  PILOTGATE_BIND="127.0.0.1:$1" "$bin" serve 2>>"$out/server-$1.log" &
  servers+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done
  echo "the server on port $1 did not start: $out/server-$1.log" >&2; exit 1
}
start_server 18401
base="http://127.0.0.1:18401"
call() { curl -sf -X "$1" -H "Authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"} "$base$2" >/dev/null; }
call POST /api/v1/purposes "$compliance" '{"key":"personalize.content","description":"scale","allowed_bases":["consent"],"min_notice_version":1,"retention_days":365}'
call POST /api/v1/experiments "$marketer" '{"key":"load","name":"Load","hypothesis":"h","purpose":"personalize.content","variants":[{"key":"control","weight":1},{"key":"v1","weight":1}],"coverage":1.0,"primary_metric":{"event":"purchase","kind":"sum"},"mde":0.05,"alpha":0.05,"power":0.8,"data_categories":["orders"],"retention_days":90}'
call POST /api/v1/experiments/load/submit "$marketer"
call POST /api/v1/experiments/load/approve "$compliance" '{"design_version":1,"comment":"scale"}'
call POST /api/v1/experiments/load/start "$marketer"

# Consents for every id a first-time run may ask for: wrk thread t of run r
# walks u(t*10^7 + r*10^6 + n).
python3 - "$out/consents.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("user_id,purpose,basis,status,notice_id,notice_version,collected_at\n")
    for thread in range(2):
        for run in range(4):
            for n in range(1, 60001):
                f.write(f"u{thread * 10_000_000 + run * 1_000_000 + n},personalize.content,consent,granted,pn,1,2026-01-01T00:00:00Z\n")
PY
"$bin" consents import "$out/consents.csv" 2>&1 | tail -n 1

# CPU ticks so far: "servers postgres wrk total".
ticks() {
  local s=0 p=0 w=0 pid
  for pid in "${servers[@]}"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  for pid in $(pgrep -f "postgres" || true); do p=$((p + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
  for pid in $(pgrep -x wrk || true); do w=$((w + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
  echo "$s $p $w $(awk '/^cpu / {print $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)"
}

# Runs one wrk per port at once; prints "requests/s errors cpu_servers cpu_pg cpu_wrk" (shares of the machine).
measure() { # NAME SCRIPT PATH PORT...
  local name="$1" script="$2" path="$3"; shift 3
  local before after pids=() i=0 port
  before=$(ticks)
  for port in "$@"; do
    START=$((i * 1000000 + ${OFFSET:-0})) RUN="$name-$i" TOKEN="$ingest" \
      wrk -t2 -c16 -d"${seconds}s" -s "bench/wrk/$script" "http://127.0.0.1:$port$path" > "$out/$name-$i.txt" &
    pids+=($!)
    i=$((i + 1))
  done
  wait "${pids[@]}"
  after=$(ticks)
  python3 - "$before" "$after" "$out/$name" "$#" <<'PY'
import re, sys
b = list(map(int, sys.argv[1].split())); a = list(map(int, sys.argv[2].split()))
rps = errors = 0
for i in range(int(sys.argv[4])):
    text = open(f"{sys.argv[3]}-{i}.txt").read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(m.group(1)) if m else 0
total = a[3] - b[3]
print(f"{rps:.0f} {errors} " + " ".join(f"{(a[k] - b[k]) / total:.2f}" for k in range(3)))
PY
}

read -r a1 a1e a1s a1p a1w < <(OFFSET=0 measure assign1 assign_new.lua /api/v1/assign 18401)
# Thread 0 of the first run assigned about half of it: its ids form the events' pool.
pool=$(python3 -c "print(max(1000, int($a1 * $seconds / 2 * 0.9)))")
read -r e1 e1e e1s e1p e1w < <(REPEAT_POOL=$pool BATCH=500 measure events1 events.lua /api/v1/events 18401)
start_server 18402
read -r a2 a2e a2s a2p a2w < <(OFFSET=2000000 measure assign2 assign_new.lua /api/v1/assign 18401 18402)
read -r e2 e2e e2s e2p e2w < <(REPEAT_POOL=$pool BATCH=500 measure events2 events.lua /api/v1/events 18401 18402)

python3 - <<PY | tee bench/results/scale_out.md
rows = [
    ("first-time assignments", 1, $a1, $a1e, $a1s, $a1p, $a1w, 1),
    ("first-time assignments", 2, $a2, $a2e, $a2s, $a2p, $a2w, 1),
    ("events, batches of 500", 1, $e1, $e1e, $e1s, $e1p, $e1w, 500),
    ("events, batches of 500", 2, $e2, $e2e, $e2s, $e2p, $e2w, 500),
]
print("## scale-out: pilotgate serve instances on one PostgreSQL, loopback, $(nproc) cores, wrk -t2 -c16 -d${seconds}s per instance, release build")
print()
print("| what | instances | requests/s | items/s | × one instance | non-2xx | CPU: servers | CPU: PostgreSQL | CPU: wrk |")
print("|---|---|---|---|---|---|---|---|---|")
one = {}
for name, n, rps, err, s, p, w, per in rows:
    one.setdefault(name, rps)
    print(f"| {name} | {n} | {rps:,.0f} | {rps * per:,.0f} | {rps / one[name]:.2f} | {err} | {s:.0%} | {p:.0%} | {w:.0%} |")
print()
for name, n, rps, err, s, p, w, per in rows:
    if n == 2:
        busiest = max([("the pilotgate servers", s), ("PostgreSQL", p), ("wrk (the load generator)", w)], key=lambda x: x[1])
        print(f"{name}, two instances: the machine's CPU was {s + p + w:.0%} busy; the largest share went to {busiest[0]} ({busiest[1]:.0%}).")
PY
