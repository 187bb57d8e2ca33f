#!/usr/bin/env bash
# The README's quickstart, scripted: serve (embedded NATS, credentials on), create an endpoint,
# run the example receiver, publish one event over the ingest API and once more with
# `quaycast publish` (the local publisher credential), and wait until the receiver printed both
# as verified. Prints the time from `serve` to the verified deliveries.
# Expected: about 10-20 s with a warm module cache (the first build downloads and compiles: minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port); nats_port=$(free_port); recv_port=$(free_port)
api="http://127.0.0.1:$api_port"

start=$(date +%s.%N)
go build -o "$work/quaycast" ./cmd/quaycast
"$work/quaycast" serve --data-dir "$work/data" --listen "127.0.0.1:$api_port" --nats-listen "127.0.0.1:$nats_port" \
  --allow-target 127.0.0.1 --log-format json 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done

ep=$(curl -sf -X POST "$api/v1/endpoints" -H 'Content-Type: application/json' \
  -d "{\"url\":\"http://127.0.0.1:$recv_port/hooks\",\"event_types\":[\"group:gate\",\"cargo_loaded\"],\"description\":\"yard app\"}")
secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])' <<<"$ep")

WEBHOOK_SECRET="$secret" python3 -u examples/receiver.py "$recv_port" >"$work/receiver.out" &
pids+=($!)

curl -sf -X POST "$api/v1/events" -d '{"id":"evt-0001","type":"cargo_gated_in","source":"tos",
  "entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z","data":{"gate":"G3","truck":"TRK-42"}}' >/dev/null
"$work/quaycast" publish --nats-url "nats://127.0.0.1:$nats_port" --data-dir "$work/data" \
  --type cargo_loaded --entity MSCU1234567 --id evt-0002 --data '{"vessel":"MAERSK KOLKATA"}' >/dev/null

for _ in $(seq 300); do
  [ "$(grep -c 'signature ok' "$work/receiver.out" || true)" -ge 2 ] && break
  sleep 0.1
done
cat "$work/receiver.out"
if [ "$(grep -c 'signature ok' "$work/receiver.out" || true)" -lt 2 ]; then
  echo "quickstart: the two verified deliveries did not arrive within 30 s"; tail -20 "$work/gateway.log"; exit 1
fi
if grep -rq 'whsec_' "$work/data"; then echo "quickstart: whsec_ bytes in the data dir"; exit 1; fi
end=$(date +%s.%N)
printf 'quickstart: serve to two verified deliveries in %.1f s; the data dir holds no whsec_ bytes\n' "$(echo "$end - $start" | bc)"
