#!/usr/bin/env bash
# The statistics validation suite, measured (issue 24): simulated pilots
# through the analysis the results service runs, against the promises of
# its methods. (a) A/A pilots: the false-positive rate of each method
# (frequentist, sequential, Bayesian) within alpha ± 1.5 pp, and the
# sequential method's rate of ever crossing under daily looks at most alpha;
# (b) the coverage of a known true relative lift, 95% ± 2 pp, for a binary
# and a sum metric, with and without CUPED; (c) the power at the planned
# sample size, within ± 3 pp of the planned power. The simulation is
# analysis/tests/validation (its fast subset runs in `cargo test`,
# analysis/tests/stats_validation.rs); every scenario has its own seed.
#
# usage: bench/stats_validation.sh [SIMS] [SEED]   (default 4000 20261203)
# Writes bench/results/stats_validation.md; exits 2 when a figure is
# outside its band (the file says which). The figures depend only on SIMS
# and SEED, not on the build. BUILD=dev builds the dev profile with only
# the analysis crate optimized (its dependencies at the dev profile's
# opt-level 1), for a machine that has a debug build but no release one;
# BUILD=debug the plain dev profile (slower; about 4 minutes on 2 busy cores).
set -euo pipefail
cd "$(dirname "$0")/.."
sims="${1:-4000}"
seed="${2:-20261203}"
out="bench/results/stats_validation.md"

build="${BUILD:-release}"
case "$build" in
  release) cargo build --release --quiet -p pilotgate-analysis --example stats_validation ;;
  debug) cargo build --quiet -p pilotgate-analysis --example stats_validation ;;
  dev) cargo build --quiet --config 'profile.dev.package.pilotgate-analysis.opt-level=3' \
         -p pilotgate-analysis --example stats_validation ;;
  *) echo "BUILD must be release, dev or debug" >&2; exit 1 ;;
esac
profile_dir=$([ "$build" = release ] && echo release || echo debug)
bin="${CARGO_TARGET_DIR:-target}/$profile_dir/examples/stats_validation"
status=0
tables=$("$bin" --sims "$sims" --seed "$seed") || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
  exit "$status"
fi
{
  echo "## Statistics validation, $(nproc) cores, $build build"
  echo
  echo "Command: \`$([ "$build" = release ] || echo "BUILD=$build ")bench/stats_validation.sh $sims $seed\` (the simulation: analysis/tests/validation/mod.rs)."
  echo
  echo "$tables"
} | tee "$out"
exit "$status"
