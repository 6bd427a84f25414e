# Sourced by bench/results.sh and bench/page.sh: builds the release binary,
# starts a server on a fresh SQLite file in $out, creates the three-variant
# pilot `big` through the API and seeds $subjects assignments (spread over
# $days days) and $events events (90% purchase, 10% refund) with SQL, then
# builds their aggregates (`pilotgate aggregates rebuild`).
# Leaves: $bin, $base, $compliance (a compliance token), the server running
# (stopped on exit).

mkdir -p "$out"
rm -f "$out"/pilotgate.db*

command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
# BIN=path/to/pilotgate measures another build (e.g. an older commit's).
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/pilotgate}"
db="$PWD/$out/pilotgate.db"
export PILOTGATE_DATABASE_URL="sqlite://$db"
export PILOTGATE_PSEUDONYM_KEY="1:$(printf '6b%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_KEY="$(printf 'a7%.0s' $(seq 1 32))"
export PILOTGATE_AUDIT_ANCHOR_FILE="${PILOTGATE_AUDIT_ANCHOR_FILE:-$PWD/bench/out/pilotgate.anchor}"
export PILOTGATE_BIND="${PILOTGATE_BIND:-127.0.0.1:18183}"
export RUST_LOG=warn
base="http://$PILOTGATE_BIND"

. bench/lib/serve.sh
call POST /api/v1/purposes "$compliance" '{"key":"personalize.content","description":"bench","allowed_bases":["consent"],"min_notice_version":1,"retention_days":365}'
call POST /api/v1/experiments "$marketer" '{"key":"big","name":"Big","hypothesis":"h","purpose":"personalize.content","variants":[{"key":"control","weight":1},{"key":"v1","weight":1},{"key":"v2","weight":1}],"coverage":1.0,"primary_metric":{"event":"purchase","kind":"sum"},"guardrails":[{"event":"refund","kind":"binary"}],"mde":0.05,"alpha":0.05,"power":0.8,"data_categories":["orders"],"retention_days":90}'
call POST /api/v1/experiments/big/submit "$marketer"
call POST /api/v1/experiments/big/approve "$compliance" '{"design_version":1,"comment":"bench"}'
call POST /api/v1/experiments/big/start "$marketer"

t0=1767225600000000
step=$(( days * 86400000000 / subjects ))
sqlite3 "$db" <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $subjects)
INSERT INTO assignments (experiment_key, subject, key_version, variant, assigned_at, basis)
SELECT 'big', printf('%064x', i), 1, CASE i % 3 WHEN 0 THEN 'control' WHEN 1 THEN 'v1' ELSE 'v2' END, $t0 + i * $step, 'consent' FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $events)
INSERT INTO events (experiment_key, event_id, subject, name, value, occurred_at, received_at)
SELECT 'big', 'e' || i, printf('%064x', (i * 7919) % $subjects), CASE WHEN i % 10 = 0 THEN 'refund' ELSE 'purchase' END,
       (i % 50) * 1.5, $t0 + ((i * 7919) % $subjects) * $step + 60000000, $t0 FROM n;
COMMIT;
SQL
# Rows written around pilotgate: build their aggregates as an upgrade would.
"$bin" aggregates rebuild 2>&1 | tail -n 1
