#!/usr/bin/env bash
# API fuzz run: schemathesis against the served /openapi.json of a real `serve` (debug build), bounded in
# time. It fails on any 5xx, any status or content type the document does not declare, and any response
# body that violates its declared schema. Skips (exit 0, with a message) when schemathesis cannot be installed.
#
# Usage: .ci/fuzz-api.sh [BINARY] [MAX_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/workload-generator}"
max_time="${2:-${FUZZ_MAX_SECONDS:-180}}"

if ! command -v st >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check schemathesis >/dev/null 2>&1 || true
fi
if ! command -v st >/dev/null 2>&1; then
  echo "schemathesis could not be installed; skipping the API fuzz run" >&2
  exit 0
fi
[ -x "$bin" ] || cargo build --locked --quiet

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# Small job limits keep each generated job short; the checks are about answers, not about throughput.
"$bin" serve --bind "127.0.0.1:$port" --data-dir "$work/data" --log-format json \
  --max-upload-bytes 10000000 --max-job-requests 200000 --max-job-output-bytes 200000000 \
  --min-free-bytes 0 --result-ttl-secs 0 --shutdown-grace-secs 2 >"$work/serve.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

status=0
SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH=.ci st run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "$max_time" --seed 1 --workers 1 --request-timeout 30 \
  --suppress-health-check all --no-color || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- last lines of the service log ---" >&2
  grep -v "\"status\":4" "$work/serve.log" | tail -n 20 >&2
fi
exit "$status"
