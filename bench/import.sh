#!/usr/bin/env bash
# Consent import throughput on SQLite and PostgreSQL, each beside the
# database's own bulk loader (sqlite3 .import, psql \copy) loading the same
# CSV into a bare table: the physical limit of getting these rows into that
# database. Reports records/s and pilotgate's share of the loader's rate.
#
# usage: bench/import.sh [ROWS]   (default 200000, 1% bad rows)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-200000}"
out="bench/out/import"
mkdir -p "$out"
rm -f "$out"/*.db*

for tool in sqlite3 curl; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done
bash .ci/postgres-up >/dev/null
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/pilotgate"
export PILOTGATE_PSEUDONYM_KEY="1:$(printf '42%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_KEY="$(printf 'a7%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_ANCHOR_FILE="${PILOTGATE_AUDIT_ANCHOR_FILE:-$PWD/bench/out/pilotgate.anchor}"

python3 bench/gen_consents.py "$out/inventory.csv" "$rows"
good=$(( $(wc -l < "$out/inventory.csv") - 1 ))

now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }

# Registers the two purposes through the API of a short-lived server.
register_purposes() {
  local url="$1"
  PILOTGATE_DATABASE_URL="$url" "$bin" migrate 2>/dev/null
  local token
  token=$(PILOTGATE_DATABASE_URL="$url" "$bin" token create --role compliance --name "bench-$RANDOM" 2>/dev/null)
  PILOTGATE_DATABASE_URL="$url" PILOTGATE_BIND=127.0.0.1:18099 RUST_LOG=warn "$bin" serve 2>/dev/null &
  local pid=$!
  for _ in $(seq 1 50); do curl -sf localhost:18099/healthz >/dev/null && break; sleep 0.1; done
  for body in \
    '{"key":"personalize.content","description":"bench","allowed_bases":["consent"],"min_notice_version":1,"retention_days":90}' \
    '{"key":"analytics.reporting.ab_testing","description":"bench","allowed_bases":["consent","legitimate_interest"],"min_notice_version":1,"li_assessment_ref":"LIA-1","retention_days":90}'; do
    curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$body" localhost:18099/api/v1/purposes >/dev/null
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# Runs the import and prints "seconds stored".
timed_import() {
  local url="$1" t0 t1 summary
  t0=$(now)
  summary=$(PILOTGATE_DATABASE_URL="$url" "$bin" consents import "$out/inventory.csv" 2>&1 | tail -n 1)
  t1=$(now)
  echo "$summary" >&2
  echo "$(calc "$t1 - $t0") $(echo "$summary" | sed -E 's/.* ([0-9]+) stored.*/\1/')"
}

sqlite_url="sqlite://$PWD/$out/bench.db"
register_purposes "$sqlite_url"
read -r s_secs s_stored < <(timed_import "$sqlite_url")
t0=$(now)
sqlite3 "$out/peer.db" "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE c (user_id TEXT, purpose TEXT, basis TEXT, status TEXT, notice_id TEXT, notice_version TEXT, source_channel TEXT, source_method TEXT, collected_at TEXT, proof_ref TEXT);" >/dev/null
sqlite3 "$out/peer.db" ".mode csv" ".import --skip 1 $out/inventory.csv c" 2>/dev/null || true
t1=$(now); s_peer=$(calc "$t1 - $t0")

pg_admin="postgres://postgres@127.0.0.1:5432/postgres"
psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS pilotgate_bench_import WITH (FORCE)" -c "CREATE DATABASE pilotgate_bench_import"
pg_url="postgres://postgres@127.0.0.1:5432/pilotgate_bench_import"
register_purposes "$pg_url"
read -r p_secs p_stored < <(timed_import "$pg_url")
psql -q "$pg_url" -c "CREATE TABLE peer (user_id TEXT, purpose TEXT, basis TEXT, status TEXT, notice_id TEXT, notice_version TEXT, source_channel TEXT, source_method TEXT, collected_at TEXT, proof_ref TEXT)"
t0=$(now)
# The rows with too few fields would stop COPY: the loader gets the well-formed rows only.
awk -F, 'NF == 10' "$out/inventory.csv" | psql -q "$pg_url" -c "\\copy peer FROM STDIN WITH (FORMAT csv, HEADER true)"
t1=$(now); p_peer=$(calc "$t1 - $t0")
psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS pilotgate_bench_import WITH (FORCE)"

report() {
  local name="$1" secs="$2" stored="$3" peer="$4" loader="$5"
  local rate peer_rate
  rate=$(calc "$rows / $secs")
  peer_rate=$(calc "$rows / $peer")
  printf '| %s | %d | %d | %.1f | %.0f | %s: %.2f s, %.0f rows/s | %.2f |\n' \
    "$name" "$rows" "$stored" "$secs" "$rate" "$loader" "$peer" "$peer_rate" "$(calc "$rate / $peer_rate")"
}

{
  echo "## consent import, $(date -u +%Y-%m-%d), $(nproc) cores, release build"
  echo
  echo "| database | rows | stored | seconds | rows/s | bulk loader, same CSV, no checks | pilotgate / loader |"
  echo "|---|---|---|---|---|---|---|"
  report SQLite "$s_secs" "$s_stored" "$s_peer" "sqlite3 .import"
  report PostgreSQL "$p_secs" "$p_stored" "$p_peer" "psql \\copy"
  echo
  echo "pilotgate validates each row, pseudonymizes it (HMAC-SHA256), hashes its content for"
  echo "idempotency, writes it with durable commits in transactions of 10,000 and audits each one."
} | tee "bench/results/import.md"
