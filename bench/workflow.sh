#!/usr/bin/env bash
# The README's five-minute workflow on the demo model, timed per step, in a fresh scratch session.
# usage: bash bench/workflow.sh     (LSN=path/to/lsn-explorer, WORK=scratch folder, both optional)
# Prints seconds per step and the total; the README quotes the total on 2 idle CPU cores.
set -euo pipefail
W=${WORK:-/tmp/lsn-workflow}
L=${LSN:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/lsn-explorer}
export HF_HUB_OFFLINE=1 LSN_SESSIONS_DIR=$W/sessions
rm -rf "$W"; mkdir -p "$W"; cd "$W"
step() {
  local start=$(date +%s.%N)
  "$L" "$@" > "$W/out.txt" 2> "$W/err.txt" || { cat "$W/err.txt"; exit 1; }
  printf '%6.1fs  %s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$*"
}
T0=$(date +%s.%N)
ALL=en,fr,zh,ja,hi,ta,ko,ur,bn
step stats --session demo --langs $ALL
step identify --session demo --method lape
step identify --session demo --method lape --top-rate 0.05 --name lape5
step identify --session demo --method random --reference lape5
step identify compare --session demo --sets lape5
step identify show --session demo --name lape5
step identify --session demo --method type1 --langs ja,zh --top-n 200
step generate --session demo --prompt "今天我们在学校" --intervene lape5:zh=zero --compare
step ppl --session demo --langs zh,ja,hi,en --intervene lape5:zh=p10
step ppl --session demo --langs $ALL --matrix --set lape5
step score --session demo --task xnli --lang zh --sample 3 --intervene lape5:zh=mean
step session export demo --out demo-export
printf 'total %.0fs\n' "$(echo "$(date +%s.%N) - $T0" | bc)"
