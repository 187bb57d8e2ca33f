#!/usr/bin/env bash
# The README's test command with both cores kept busy (stress-ng --cpu 2), as a loaded CI machine
# would be: a test asserting "no duplicates" or a bound must hold here too.
#   scripts/stress-test.sh [RUNS] [go test args...]      (default: 1 run of ./...)
# Expected wall time per run on the 2-core reference machine: about 8-12 minutes (about 3 idle).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v stress-ng >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq stress-ng) >/dev/null
fi
runs=${1:-1}
shift || true
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(./...)

stress-ng --cpu 2 --timeout 3h --quiet &
stress=$!
trap 'kill $stress 2>/dev/null || true; wait $stress 2>/dev/null || true' EXIT

failed=0
for i in $(seq "$runs"); do
  start=$(date +%s)
  if go test -race -count=1 -timeout 20m "${args[@]}" >"/tmp/stress-test.$i.log" 2>&1; then
    result=passed
  else
    result=FAILED
    failed=$((failed + 1))
    grep -E '^(--- FAIL|FAIL|panic)|_test.go:[0-9]+:' "/tmp/stress-test.$i.log" | head -40 || true
  fi
  echo "stress run $i/$runs: $result in $(( $(date +%s) - start )) s (log: /tmp/stress-test.$i.log)"
done
echo "$((runs - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
