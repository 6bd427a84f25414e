# Sourced by the benchmarks: migrates $bin's database, creates a compliance
# and a marketer token ($compliance, $marketer), starts the server in the
# background (stopped on exit, log in $out/server.log), waits for /healthz at
# $base, and defines `call METHOD PATH TOKEN [BODY]`.

"$bin" migrate 2>/dev/null
compliance=$("$bin" token create --role compliance --name dpo 2>/dev/null)
marketer=$("$bin" token create --role marketer --name mia 2>/dev/null)
"$bin" serve 2>"$out/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
call() { curl -sf -X "$1" -H "Authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"} "$base$2" >/dev/null; }
