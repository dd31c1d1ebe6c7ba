#!/usr/bin/env bash
# FSDP check for a machine with GPUs (Accelerate enables FSDP only on accelerators; on CPU, tests/test_train.py runs
# the same loop under Accelerate's FSDP2 with that one gate lifted, tests/fsdp_loop_on_cpu.py). From the repository
# root, with the package installed:
#
#   bash scripts/check_fsdp_gpu.sh [NUM_GPUS]        # default: every GPU nvidia-smi lists
#
# Under configs/accelerate/fsdp.yaml it trains the tiny model 8 steps straight, then 4 steps that stop abruptly after
# their checkpoint, resumed to 8 (bf16); the two final models must agree, and final/ must load as a plain checkpoint
# (the model's own class in auto_map, no FSDP files). It prints PASS or the first failure. CONFIG_FILE and LOOP_FLAGS
# rehearse the same steps elsewhere (CPU: a 2-process MULTI_CPU config file and LOOP_FLAGS=--cpu).
set -euo pipefail

GPUS=${1:-$(nvidia-smi -L | wc -l)}
CONFIG_FILE=${CONFIG_FILE:-configs/accelerate/fsdp.yaml}
LOOP_FLAGS=${LOOP_FLAGS:-}
PYTHON=${PYTHON:-python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

"$PYTHON" -c "
from microau_hf.data.faces import load_faces
from microau_hf.data.synthetic import make_synthetic_corpus
make_synthetic_corpus('$WORK/corpus', num_samples=64, seed=0, aus='samm', faces=load_faces(public_domain_only=True))
"

train() {  # OUTPUT_DIR [extra flags]: 8 steps of the tiny model on the corpus's aligned-crop path, 4 samples a GPU
  local out=$1
  shift
  # shellcheck disable=SC2086  # LOOP_FLAGS: words, on purpose
  "$PYTHON" -m accelerate.commands.launch --config_file "$CONFIG_FILE" --num_processes "$GPUS" \
    scripts/train.py --data "$WORK/corpus" --output-dir "$out" --aus samm --preset tiny --batch-size 4 \
    --max-steps 8 --logging-steps 1 --pre-aligned $LOOP_FLAGS "$@"
}

echo "== straight run, $GPUS process(es), $CONFIG_FILE"
train "$WORK/straight"
echo "== 4 steps, then an abrupt stop after the checkpoint"
status=0
train "$WORK/resumed" --save-steps 4 --stop-after-steps 4 || status=$?
if [ "$status" -ne 3 ] && [ "$status" -ne 1 ]; then  # the loop exits 3; a launcher may report any failure as 1
  echo "FAIL: the interrupted run ended with status $status" && exit 1
fi
test -f "$WORK/resumed/checkpoint-4/optimizer.pt" || { echo "FAIL: no checkpoint-4 written"; exit 1; }
echo "== resumed to step 8"
train "$WORK/resumed" --resume-from latest

"$PYTHON" - "$WORK" <<'EOF'
import json
import sys
from pathlib import Path

from safetensors.torch import load_file

from microau_hf.checkpoints import load_model

work = Path(sys.argv[1])
straight, resumed = (load_file(work / run / "final" / "model.safetensors") for run in ("straight", "resumed"))
assert straight.keys() == resumed.keys(), "the two final models hold different tensors"
worst = max(float((straight[k].float() - resumed[k].float()).abs().max()) for k in straight)
print(f"largest |straight - resumed| over {len(straight)} tensors: {worst:.2e}")
assert worst < 1e-3, "the resumed run did not end where the straight run did"  # bf16 kernels may round apart
config = json.loads((work / "straight" / "final" / "config.json").read_text())
assert config["auto_map"]["AutoModel"] == "modeling_micro_au_clip.MicroAUClipModel", config["auto_map"]
assert not list((work / "straight" / "final").glob("_fsdp*.py")), "torch's FSDP files were saved as remote code"
load_model(work / "straight" / "final")  # gathered whole: loads without FSDP
print("PASS: trained, checkpointed, resumed to the same weights, and saved a loadable model")
EOF
