#!/usr/bin/env bash
# The GPU check: what a machine with a real GPU tells about hearth, in one results folder.
#
#   scripts/gpu-check.sh [HEARTH_BINARY] [RESULTS_DIR]
#
# HEARTH_BINARY defaults to target/release/hearth, RESULTS_DIR to gpu-check-<date>. Needs the
# models in hearth's cache (`hearth pull` and `hearth pull gemma3`, or HEARTH_CACHE_DIR pointing
# at a copy) and python3 for the comparisons. Runs from the repository root (it reads
# tests/fixtures/). Writes:
#   devices.txt           `hearth devices`
#   greedy.txt            greedy ids of the five reference prompts against the exact float32
#                         reference, compared up to each prompt's first near-tie (margin < 0.1)
#   perplexity.txt        `hearth perplexity` at --ctx 128 (reference: 24.8866 on lavapipe)
#   bench-*.json, .md     `hearth bench` on the default model and Gemma 3 270M, with the roofline,
#                         in the GPU shape (split K, weights in storage buffers) and beside it the
#                         CPU-adapter shape (rows, weights in textures) forced on the same GPU
#   chart.svg             every bench file drawn against its roofline (`bench compare --svg`)
#   summary.txt           one line per check: ok or what differed
# Exits non-zero when a greedy check fails.
set -uo pipefail
cd "$(dirname "$0")/.."

hearth=${1:-target/release/hearth}
out=${2:-gpu-check-$(date +%Y%m%d-%H%M%S)}
[ -x "$hearth" ] || { echo "no hearth binary at $hearth (build one with cargo build --release)" >&2; exit 2; }
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
summary="$out/summary.txt"
: > "$summary"
step() { printf '== %s (%s)\n' "$1" "$(date +%T)" >&2; }

step "devices"
"$hearth" devices > "$out/devices.txt" 2>&1
echo "devices: $(grep -c '^\[' "$out/devices.txt") adapters, default: $(grep 'default' "$out/devices.txt" | head -n 1)" >> "$summary"

step "greedy ids against the float32 reference"
failed=0
python3 - "$hearth" tests/fixtures/greedy_f32_reference.json > "$out/greedy.txt" 2>&1 <<'EOF'
import json, subprocess, sys
hearth, path = sys.argv[1], sys.argv[2]
bad = 0
for r in json.load(open(path))["results"]:
    ref, margins = r["ref_ids"], r["ref_margins"]
    # Steps up to the first near-tie, where engines may rightly differ.
    n = next((i for i, m in enumerate(margins) if m < 0.1), len(ref))
    got = subprocess.run([hearth, "run", "--raw", "--temp", "0", "--ids", "-n", str(len(ref)), r["prompt"]],
                         capture_output=True, text=True, check=True).stdout.split()
    got = [int(t) for t in got]
    ok = got[:n] == ref[:n]
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {r['prompt']!r}: {n} steps before the first near-tie"
          + ("" if ok else f"; first difference at step {next(i for i in range(n) if i >= len(got) or got[i] != ref[i])}"))
sys.exit(1 if bad else 0)
EOF
[ $? = 0 ] || failed=1
echo "greedy: $( [ $failed = 0 ] && echo ok || echo FAILED) ($(grep -c '^ok' "$out/greedy.txt") of $(grep -c "'" "$out/greedy.txt") prompts)" >> "$summary"

step "perplexity"
"$hearth" perplexity --file tests/fixtures/ppl_text.txt --ctx 128 > "$out/perplexity.txt" 2>&1
echo "perplexity: $(grep -o 'PPL = [0-9.]*' "$out/perplexity.txt" | tail -n 1) (lavapipe: 24.8866)" >> "$summary"

for model in default gemma3; do
  step "bench $model"
  args=()
  [ "$model" = default ] || args=(-m "$model")
  "$hearth" bench "${args[@]}" -p 512 -n 128 -r 3 -o json > "$out/bench-$model.json" 2> "$out/bench-$model.log"
  HEARTH_DECODE_SHAPE=rows HEARTH_WEIGHTS=texture "$hearth" bench "${args[@]}" -p 512 -n 128 -r 3 -o json \
    > "$out/bench-$model-cpu-shape.json" 2> "$out/bench-$model-cpu-shape.log"
  "$hearth" bench compare "$out/bench-$model.json" "$out/bench-$model-cpu-shape.json" > "$out/bench-$model.md" 2>&1
  echo "bench $model (GPU shape, then CPU-adapter shape): $(grep -E '^\| (pp|tg)' "$out/bench-$model.md" | tr -s ' ' | tr '\n' ' ')" >> "$summary"
done
"$hearth" bench compare "$out"/bench-*.json --svg "$out/chart.svg" > /dev/null 2>&1

cat "$summary"
exit $failed
