#!/usr/bin/env bash
# Results read time at three sizes (issue 25): GET /api/v1/experiments/big/results
# and the results page /ui/experiments/big (signed in like a browser) for a
# three-variant pilot on SQLite with 10 thousand, 1 million and 10 million
# events (one subject per ten events, assigned over 14 days), beside the same
# server's /healthz in the same run. Medians of 21 requests each, alternated.
# The pilot is created through the API; its assignments and events are
# seeded with SQL and its aggregates built with `pilotgate aggregates
# rebuild` (this measures the read path; `bench/soak.sh` measures them
# maintained under load).
# Goals: endpoint p50 < 50 ms and page p50 < 150 ms at every size.
#
# usage: bench/results.sh [EVENTS ...]   (default 10000 1000000 10000000)
#        BIN=path/to/pilotgate bench/results.sh  measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 1000000 10000000)
runs=21
table="bench/out/results-table.md"
mkdir -p bench/out
: > "$table"

for events in "${sizes[@]}"; do
  (
    subjects=$(( events / 10 ))
    days=14
    out="bench/out/results-$events"
    . bench/lib/seeded_pilot.sh

    jar="$out/cookies.txt"
    rm -f "$jar"
    csrf=$(curl -s -c "$jar" "$base/ui/sign-in" | grep -o 'name="csrf" value="[^"]*"' | head -n 1 | sed 's/.*value="//; s/"$//')
    curl -s -o /dev/null -b "$jar" -c "$jar" --data-urlencode "token=$compliance" --data-urlencode "csrf=$csrf" "$base/ui/sign-in"
    page() { curl -s -o "$out/page.html" -w "%{time_total}\n" -b "$jar" "$base$1"; }
    api() { curl -s -o "$out/body.json" -w "%{time_total}\n" -H "Authorization: Bearer $compliance" "$base$1"; }
    median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    : > "$out/health.runs"; : > "$out/endpoint.runs"; : > "$out/page.runs"
    api /api/v1/experiments/big/results >/dev/null  # the first read warms the page cache
    for _ in $(seq $runs); do
      api /healthz >> "$out/health.runs"
      api /api/v1/experiments/big/results >> "$out/endpoint.runs"
      page /ui/experiments/big >> "$out/page.runs"
    done
    grep -q 'Results per variant' "$out/page.html" || { echo "the results page did not render: see $out/page.html" >&2; exit 1; }
    users=$(python3 -c "import json; print(sum(v['users'] for v in json.load(open('$out/body.json'))['variants']))")
    [ "$users" = "$subjects" ] || { echo "the results analysed $users users, not $subjects" >&2; exit 1; }
    health=$(median < "$out/health.runs")
    endpoint=$(median < "$out/endpoint.runs")
    results=$(median < "$out/page.runs")
    db_mib=$(du -m "$db" | cut -f1)
    python3 - <<PY >> "$table"
h, e, p = $health, $endpoint, $results
ok = lambda t, goal: "met" if t < goal else "NOT met"
print(f"| {$events:,} | {$subjects:,} | {$db_mib:,} | {h * 1000:.2f} | {e * 1000:.1f} ({e / 0.05:.2f} of 50 ms, {ok(e, 0.05)}) | {p * 1000:.1f} ({p / 0.15:.2f} of 150 ms, {ok(p, 0.15)}) | {e / h:,.0f} |")
PY
    tail -n 1 "$table"
  )
done

{
  echo "## results read time by size, 3 variants, 14 days, SQLite, $(nproc) cores, release build"
  echo
  echo "Medians of $runs requests each, alternated (healthz, endpoint, page), after one warm-up read."
  echo "The results read the maintained aggregates (migration 0018), never the events."
  echo
  echo "| events | subjects | database MiB | /healthz ms | results endpoint ms (share of goal) | results page ms (share of goal) | endpoint × /healthz |"
  echo "|---|---|---|---|---|---|---|"
  cat "$table"
} | tee bench/results/results.md
