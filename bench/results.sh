#!/usr/bin/env bash
# Time of GET /api/v1/experiments/{key}/results for a pilot with 100,000
# assigned subjects and 1,000,000 events on SQLite, beside the same server's
# /healthz time, in one run. The pilot is created through the API; its
# assignments and events are seeded with SQL (this measures the read path).
#
# usage: bench/results.sh [SUBJECTS] [EVENTS]   (default 100000 1000000)
#        BIN=path/to/pilotgate RESULTS=file bench/results.sh  measures another
#        build and writes its table to `file`.
set -euo pipefail
cd "$(dirname "$0")/.."
subjects="${1:-100000}"
events="${2:-1000000}"
out="bench/out/results"
days=1
. bench/lib/seeded_pilot.sh

timed() { curl -s -o "$out/body.json" -w "%{time_total}" -H "Authorization: Bearer $compliance" "$base$1"; }
h=$(timed /healthz)
r1=$(timed /api/v1/experiments/big/results)
r2=$(timed /api/v1/experiments/big/results)
r3=$(timed /api/v1/experiments/big/results)
python3 - "$out/body.json" <<PY | tee "${RESULTS:-bench/results/results.md}"
import json, sys
body = json.load(open(sys.argv[1]))
times = sorted([$r1, $r2, $r3])
print("## results endpoint, $subjects subjects x $events events, SQLite, $(nproc) cores, release build")
print()
print("| request | seconds | × /healthz |")
print("|---|---|---|")
print(f"| GET /healthz | {$h:.4f} | 1 |")
for i, t in enumerate([$r1, $r2, $r3], 1):
    print(f"| GET /results, run {i} | {t:.2f} | {t / $h:,.0f} |")
print()
print(f"median {times[1]:.2f} s (goal: under 2 s); users analysed {sum(v['users'] for v in body['variants'])}; decision {body['decision']['outcome']}")
PY
