#!/usr/bin/env bash
# Coverage of the demo's 95% confidence interval: runs `pilotgate demo --exit`
# with seeds 1..RUNS, each on a fresh SQLite file, and counts the runs whose
# interval holds the true lift (about 95% of them should). Also reports each
# run's wall time beside the 2-minute goal of issue 8.
#
# usage: bench/demo_coverage.sh [RUNS] [SUBJECTS]   (defaults: 20 runs, the demo's default population)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
subjects="${2:-}"
out="bench/out/demo"
rm -rf "$out" && mkdir -p "$out"

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/pilotgate"
export PILOTGATE_PSEUDONYM_KEY="1:$(printf '3c%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_KEY="$(printf 'a7%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_ANCHOR_FILE="${PILOTGATE_AUDIT_ANCHOR_FILE:-$PWD/bench/out/pilotgate.anchor}"
args=(demo --exit --bind 127.0.0.1:0)
[ -n "$subjects" ] && args+=(--subjects "$subjects")

covered=0
rows=""
for seed in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  "$bin" "${args[@]}" --seed "$seed" --db "sqlite://$PWD/$out/seed$seed.db" > "$out/seed$seed.txt" 2> "$out/seed$seed.err"
  seconds=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
  line=$(grep -m1 "estimated lift" "$out/seed$seed.txt" | sed 's/^ *estimated lift *//')
  verdict=$(grep -m1 "covers the true lift" "$out/seed$seed.txt" | awk '{print $NF}')
  mismatches=$(grep -m1 "answers differing" "$out/seed$seed.txt" | awk '{print $NF}')
  [ "$verdict" = "yes" ] && covered=$((covered + 1))
  echo "seed $seed: $line covered=$verdict mismatches=$mismatches ${seconds}s" >&2
  rows+="| $seed | $line | $verdict | $mismatches | $seconds |"$'\n'
  rm -f "$out/seed$seed.db"*
done

true_lift=$(grep -m1 "true lift" "$out/seed1.txt" | awk '{print $NF}')
{
  echo "## demo: coverage of the 95% CI over $runs seeds ($(nproc) cores, release build)"
  echo
  echo "true lift $true_lift; population: ${subjects:-the default}; each run on a fresh SQLite file"
  echo
  echo "| seed | estimate and 95% CI | covers | mismatches | seconds (goal < 120) |"
  echo "|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "**$covered of $runs intervals cover the true lift** (expected about $(python3 -c "print(round(0.95 * $runs))"); a binomial(20, 0.95) count is 17 or more 98% of the time)."
} | tee bench/results/demo_coverage.md
