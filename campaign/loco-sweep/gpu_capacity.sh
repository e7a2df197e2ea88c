#!/usr/bin/env bash
# The leave-camera-out capacity sweep (issue 22) on one GPU: students of 32, 48 and 64 channels (31k, 69k,
# 122k multiply-adds per pixel), each the first-stage recipe (campaign/loco-sweep/B2500, at most 2500 steps),
# then three rounds of sharpened targets (campaign/loco-sweep/ST) from its own weights. Run from the repository
# root with the clean corpus built (scripts/build_clean_corpus.py) and ../shared/data beside it:
#     bash campaign/loco-sweep/gpu_capacity.sh            # -> runs/gpuB{32,48,64}, runs/gpuS{1,2,3}-{32,48,64}
# The chains share one target cache (runs/gpu-targets); the 48- and 64-channel chains start once the 32-channel one
# has filled the teacher's targets. On an H200 (16 cores, 5 loader workers a chain) the three first stages took
# 97, 83 and 78 s side by side (2026-12-04, campaign/loco-sweep/GPU-B*).
set -euo pipefail
DATA=${DATA:-../shared/data}
CORPUS=${CORPUS:-$HOME/.cache/lgbpn/clean-corpus}
mkdir -p runs/gpu-targets runs/gpu-configs
python3 - "$PWD" "$CORPUS" <<'PY'
import sys
import yaml
root, corpus = sys.argv[1:]
for name, source, steps in (("B", "B2500", 2500), ("S", "ST", None)):
    config = yaml.safe_load(open(f"campaign/loco-sweep/{source}/config.yaml"))
    config.update(teacher=f"{root}/campaign/loco/best.safetensors", clean_data=[corpus], workers=5)
    if steps:
        config["steps"] = steps
    for ch in (32, 48, 64):
        yaml.safe_dump(dict(config, model={} if ch == 32 else {"base_ch": ch}), open(f"runs/gpu-configs/{name}{ch}.yaml", "w"))
PY
stage() {  # run config [init]
  mkdir -p "runs/$1" && ln -sfn "$PWD/runs/gpu-targets" "runs/$1/targets"
  python3 -m lgbpn distill --data "$DATA" --out "runs/$1" --config "runs/gpu-configs/$2.yaml" ${3:+--init "$3"} > "runs/$1.out" 2>&1
}
chain() {
  local ch=$1 prev=runs/gpuB$1/best.safetensors
  stage "gpuB$ch" "B$ch"
  for round in 1 2 3; do
    stage "gpuS$round-$ch" "S$ch" "$prev"
    prev=runs/gpuS$round-$ch/best.safetensors
  done
}
chain 32 & first=$!
while [ ! -s runs/gpuB32/log.csv ] && kill -0 "$first" 2>/dev/null; do sleep 2; done
chain 48 & chain 64 &
wait
