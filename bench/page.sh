#!/usr/bin/env bash
# Time to render the results page and the compliance page of a pilot with 3
# variants and 100,000 subjects (assigned over 14 days, 300,000 events) on
# SQLite, signed in through the form like a browser, beside the same
# server's /healthz and the results endpoint the page is built from, in one
# run. Goal (issue 7): the page under 300 ms.
#
# usage: bench/page.sh [SUBJECTS] [EVENTS] [DAYS]   (default 100000 300000 14)
set -euo pipefail
cd "$(dirname "$0")/.."
subjects="${1:-100000}"
events="${2:-300000}"
days="${3:-14}"
out="bench/out/page"
. bench/lib/seeded_pilot.sh

jar="$out/cookies.txt"
rm -f "$jar"
csrf=$(curl -s -c "$jar" "$base/ui/sign-in" | grep -o 'name="csrf" value="[^"]*"' | head -n 1 | sed 's/.*value="//; s/"$//')
curl -s -o /dev/null -b "$jar" -c "$jar" --data-urlencode "token=$compliance" --data-urlencode "csrf=$csrf" "$base/ui/sign-in"

page() { curl -s -o "$out/page.html" -w "%{time_total}\n" -b "$jar" "$base$1"; }
api() { curl -s -o "$out/body.json" -w "%{time_total}\n" -H "Authorization: Bearer $compliance" "$base$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
runs=7
health=$(for _ in $(seq $runs); do api /healthz; done | median)
endpoint=$(for _ in $(seq $runs); do api /api/v1/experiments/big/results; done | median)
results=$(for _ in $(seq $runs); do page /ui/experiments/big; done | median)
grep -q 'Results per variant' "$out/page.html" || { echo "the results page did not render: see $out/page.html" >&2; exit 1; }
charts=$(grep -o '<svg' "$out/page.html" | wc -l)
compliance=$(for _ in $(seq $runs); do page /ui/experiments/big/compliance; done | median)
grep -q 'Eligibility' "$out/page.html" || { echo "the compliance page did not render: see $out/page.html" >&2; exit 1; }

python3 - <<PY | tee bench/results/page.md
health, endpoint, results, compliance = $health, $endpoint, $results, $compliance
print("## dashboard pages, 3 variants x $subjects subjects over $days days, $events events, SQLite, $(nproc) cores, release build")
print()
print("| request (median of $runs) | ms | × /healthz | × results endpoint |")
print("|---|---|---|---|")
for name, t in [("GET /healthz", health), ("GET /api/v1/experiments/big/results", endpoint),
                ("GET /ui/experiments/big (results page)", results), ("GET /ui/experiments/big/compliance", compliance)]:
    print(f"| {name} | {t * 1000:.1f} | {t / health:,.0f} | {t / endpoint:.2f} |")
print()
verdict = "met" if results < 0.3 else "NOT met"
print(f"results page {results * 1000:.0f} ms with $charts charts: goal under 300 ms {verdict}")
PY
