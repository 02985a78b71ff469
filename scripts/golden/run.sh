#!/usr/bin/env bash
# Usage: run.sh BINARY OUTDIR  -> writes OUTDIR/hashes.txt (sha256 of every workload/dataset/plot/report file).
# Compare two runs with: diff A/hashes.txt B/hashes.txt (outputs must stay byte-identical for the same seed).
# Example: scripts/golden/run.sh target/debug/workload-generator /tmp/before (then rebuild, /tmp/after, diff).
set -uo pipefail
BIN=$(realpath "$1"); OUT=$2; rm -rf "$OUT"; mkdir -p "$OUT"; OUT=$(realpath "$OUT")
R=$(git -C "$(dirname "$0")" rev-parse --show-toplevel); S=$R/scripts/golden/specs
cd "$R"
for f in $S/*.json; do n=$(basename $f .json)
  "$BIN" generate --spec $f --output-dir "$OUT/$n" >"$OUT/$n.log" 2>&1 || echo "FAILED $n" >> "$OUT/failures.txt"
done
"$BIN" generate --trace-type constant --target-qps 3 --duration-ms 30000 --target-prompt-len 256 --seed 11 --output-dir "$OUT/cli_constant" >"$OUT/cli.log" 2>&1 || echo "FAILED cli" >> "$OUT/failures.txt"
"$BIN" dataset shared-prefix --seed 5 --output "$OUT/ds_sp.jsonl" --num-configs 2 --prompt-length 120,40 --prompt-length-std 10 --num-samples-per-prefix 5 --num-prefix 2 --randomize-order >/dev/null 2>&1 || echo "FAILED sp" >> "$OUT/failures.txt"
"$BIN" dataset multi-turn --seed 5 --output "$OUT/ds_mt.jsonl" --num-sessions-mean 3 --num-sessions-std 0 --prompt-length-mean 30 >/dev/null 2>&1 || echo "FAILED mt" >> "$OUT/failures.txt"
"$BIN" dataset convert --help >/dev/null 2>&1
"$BIN" utility --help > "$OUT/utility_help.txt" 2>&1
cd "$OUT"
# hash everything except manifests (they carry timings/paths) -- manifests hashed separately with volatile keys removed
find . -type f \( -name '*.jsonl' -o -name '*.json' -o -name '*.svg' \) ! -name 'manifest.json' | sort | xargs sha256sum > hashes.txt
for m in $(find . -name manifest.json | sort); do
  python3 - "$m" >> hashes.txt <<'PY'
import json,sys,hashlib
d=json.load(open(sys.argv[1]))
def strip(o):
    if isinstance(o,dict):
        return {k:strip(v) for k,v in o.items() if k not in ('created_at','started_at','finished_at','elapsed_ms','duration_s','timings','wall_ms','elapsed_s','generated_at','output_dir','path','version')}
    if isinstance(o,list): return [strip(x) for x in o]
    return o
print(hashlib.sha256(json.dumps(strip(d),sort_keys=True).encode()).hexdigest(), sys.argv[1]+" (stripped)")
PY
done
cat failures.txt 2>/dev/null
wc -l < hashes.txt
