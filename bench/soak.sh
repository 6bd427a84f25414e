#!/usr/bin/env bash
# Soak: one `pilotgate serve` on SQLite (durable commits) under mixed traffic
# (assignments new and repeat, event batches, consent grants, withdrawals,
# results reads; bench/wrk/mixed.lua) for a bounded time, on loopback. Reports
# throughput and p99 per interval, errors, and the server's memory (RSS)
# sampled every interval, with its growth from the first interval to the last,
# beside the same server's /healthz rate measured in the same run.
#
# usage: bench/soak.sh [SECONDS] [INTERVAL]   (defaults: 300 s in 30 s intervals;
#        issue 25 measures `bench/soak.sh 600 60`)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
interval="${2:-30}"
out="bench/out/soak"
mkdir -p "$out"
rm -f "$out"/pilotgate.db* "$out"/interval-*.txt "$out"/rss.txt "$out"/errors.txt

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/pilotgate}"
export PILOTGATE_DATABASE_URL="sqlite://$PWD/$out/pilotgate.db"
export PILOTGATE_PSEUDONYM_KEY="1:$(printf '6b%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_KEY="$(printf 'a7%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_ANCHOR_FILE="${PILOTGATE_AUDIT_ANCHOR_FILE:-$PWD/bench/out/pilotgate.anchor}"
export PILOTGATE_BIND=127.0.0.1:18282
export RUST_LOG=warn
base="http://$PILOTGATE_BIND"
pool=20000

. bench/lib/serve.sh
ingest=$("$bin" token create --role ingest --name soak 2>/dev/null)
analyst=$("$bin" token create --role analyst --name ari 2>/dev/null)
call POST /api/v1/purposes "$compliance" '{"key":"personalize.content","description":"soak","allowed_bases":["consent"],"min_notice_version":1,"retention_days":365}'
call POST /api/v1/experiments "$marketer" '{"key":"soak","name":"Soak","hypothesis":"h","purpose":"personalize.content","variants":[{"key":"control","weight":1},{"key":"v1","weight":1}],"coverage":1.0,"primary_metric":{"event":"purchase","kind":"binary"},"mde":0.05,"alpha":0.05,"power":0.8,"data_categories":["orders"],"retention_days":90}'
call POST /api/v1/experiments/soak/submit "$marketer"
call POST /api/v1/experiments/soak/approve "$compliance" '{"design_version":1,"comment":"soak"}'
call POST /api/v1/experiments/soak/start "$marketer"
python3 - "$out/consents.csv" "$pool" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("user_id,purpose,basis,status,notice_id,notice_version,collected_at\n")
    for n in range(1, int(sys.argv[2]) + 1):
        f.write(f"u{n},personalize.content,consent,granted,pn,1,2026-01-01T00:00:00Z\n")
PY
"$bin" consents import "$out/consents.csv" 2>&1 | tail -n 1
for n in $(seq 1 "$pool"); do echo "{\"experiment\":\"soak\",\"user_id\":\"u$n\"}"; done > "$out/assign.jsonl"
python3 - "$base" "$ingest" "$out/assign.jsonl" <<'PY'
import concurrent.futures, json, sys, urllib.request
base, token, path = sys.argv[1:]
def assign(line):
    req = urllib.request.Request(base + "/api/v1/assign", data=line.encode(), method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["variant"] is not None
with open(path) as f, concurrent.futures.ThreadPoolExecutor(16) as pool:
    assigned = sum(pool.map(assign, f.read().splitlines()))
print(f"{assigned} subjects assigned before the soak")
PY

# Resident memory in KiB: anonymous (heap: caches, buffers) and file-backed
# (the database pages the analytics connections map), and the file's size.
rss() {
  awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {print a, f}' "/proc/$server/status"
  du -k "$out/pilotgate.db" | cut -f1
}
wrk -t2 -c16 -d5s "$base/healthz" > "$out/healthz.txt"
rounds=$(( seconds / interval ))
echo "soaking for $((rounds * interval)) s in $rounds intervals of $interval s"
for round in $(seq 1 "$rounds"); do
  ROUND=$round POOL=$pool INGEST="$ingest" ANALYST="$analyst" wrk -t2 -c16 -d"${interval}s" --latency -s bench/wrk/mixed.lua "$base/" \
    > "$out/interval-$round.txt" 2>> "$out/errors.txt"
  echo "$round $(rss | tr '\n' ' ')" >> "$out/rss.txt"
  tail -n 1 "$out/rss.txt" | awk -v r="$round" '{printf "interval %d: anonymous %.0f MiB, file-backed %.0f MiB, database %.0f MiB\n", r, $2 / 1024, $3 / 1024, $4 / 1024}'
done

python3 - "$out" "$rounds" "$interval" <<'PY' | tee bench/results/soak.md
import re, sys
out, rounds, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def parse(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text)
    v, unit = float(m.group(1)), m.group(2)
    p99 = v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return rps, p99, int(errors.group(1)) if errors else 0, sum(map(int, sockets.groups())) if sockets else 0
healthz = float(re.search(r"Requests/sec:\s+([\d.]+)", open(f"{out}/healthz.txt").read()).group(1))
samples = [[int(x) / 1024 for x in line.split()[1:4]] for line in open(f"{out}/rss.txt")]
print(f"## soak: mixed traffic for {rounds * interval} s, SQLite with durable commits, wrk -t2 -c16, release build")
print()
print("mix per 1000 requests: 700 repeat + 100 first-time assignments, 150 event batches of 50, 30 consent grants, 19 withdrawals, 1 results read")
print()
print(f"/healthz beside it: {healthz:,.0f} req/s")
print()
print("| interval | requests/s | share of /healthz | p99 ms | non-2xx | socket errors | anonymous MiB | file-backed MiB | database MiB |")
print("|---|---|---|---|---|---|---|---|---|")
total_errors = 0
rates = []
for r in range(1, rounds + 1):
    rps, p99, errors, sockets = parse(open(f"{out}/interval-{r}.txt").read())
    total_errors += errors + sockets
    rates.append(rps)
    anon, mapped, db = samples[r - 1]
    print(f"| {r} | {rps:,.0f} | {rps / healthz:.1%} | {p99:.1f} | {errors} | {sockets} | {anon:.0f} | {mapped:.0f} | {db:.0f} |")
print()
first, last = samples[0], samples[-1]
half = samples[len(samples) // 2]
second_half = [s[0] for s in samples[len(samples) // 2:]]
middle = sorted(second_half)[len(second_half) // 2]
swing = max(abs(a - middle) / middle for a in second_half)
p99s = [parse(open(f"{out}/interval-{r}.txt").read())[1] for r in range(1, rounds + 1)]
non2xx = sum(parse(open(f"{out}/interval-{r}.txt").read())[2] for r in range(1, rounds + 1))
sockets = sum(parse(open(f"{out}/interval-{r}.txt").read())[3] for r in range(1, rounds + 1))
print(f"throughput: first interval {rates[0]:,.0f} req/s, last {rates[-1]:,.0f} req/s ({rates[-1] / rates[0]:.0%} of the first); errors: {total_errors}")
print()
print(f"memory: anonymous {first[0]:.0f} MiB after the first interval, {half[0]:.0f} MiB half-way, {last[0]:.0f} MiB at the end "
      f"({last[0] - first[0]:+.0f} MiB; {last[0] - half[0]:+.0f} MiB over the second half); file-backed {first[1]:.0f} -> {last[1]:.0f} MiB "
      f"while the database grew {first[2]:.0f} -> {last[2]:.0f} MiB")
print()
met = lambda ok: "met" if ok else "NOT met"
print("| goal (issue 25) | measured | verdict |")
print("|---|---|---|")
print(f"| 0 non-2xx responses | {non2xx} | {met(non2xx == 0)} |")
print(f"| 0 requests over 2 s (wrk's timeout; socket errors) | {sockets} | {met(sockets == 0)} |")
print(f"| last interval ≥ 85% of the first | {rates[-1] / rates[0]:.0%} | {met(rates[-1] >= 0.85 * rates[0])} |")
print(f"| p99 < 100 ms in every interval | worst {max(p99s):.1f} ms | {met(max(p99s) < 100)} |")
print(f"| anonymous memory within ±10% over the second half | ±{swing:.0%} around {middle:.0f} MiB | {met(swing <= 0.10)} |")
PY
