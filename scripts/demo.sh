#!/usr/bin/env bash
# The main job on bundled data: set-up (only what is missing), build, then the workflow a
# TF OD API user knows: start from a pipeline preset, change steps / batch size / learning rate,
# save, validate, compare. Outputs go to demo-out/ (MRCNN_DEMO_DIR).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup
build

out="${MRCNN_DEMO_DIR:-$MRCNN_ROOT/demo-out}"
mkdir -p "$out"
bin="$MRCNN_BUILD_DIR/tools"
cd "$MRCNN_ROOT"

say "presets shipped with mrcnn"
"$bin/mrcnn-config" list-presets

say "start from the Penn-Fudan fine-tuning preset"
"$bin/mrcnn-config" init --preset pennfudan_finetune -o "$out/pennfudan.json" --force

say "change run length, batch size and learning rate, as one would in pipeline.config"
"$bin/mrcnn-config" set "$out/pennfudan.json" train.epochs=0 train.steps=2000 train.batch_size=4 \
  train.optimizer.lr=0.01 'train.lr_schedule.milestones=[1500]'
"$bin/mrcnn-config" validate "$out/pennfudan.json"

say "what changed against the preset"
"$bin/mrcnn-config" init --preset pennfudan_finetune -o "$out/preset.json" --force
"$bin/mrcnn-config" diff "$out/preset.json" "$out/pennfudan.json"

say "a bad edit is refused and the file is kept"
if "$bin/mrcnn-config" set "$out/pennfudan.json" model.num_classes=one; then
  die "mrcnn-config accepted a non-integer num_classes"
fi
"$bin/mrcnn-config" get "$out/pennfudan.json" model.num_classes

say "the synthetic shapes data set the tiny preset trains on (data/shapes)"
if [ ! -f data/shapes/val.json ] || [ "$(ls data/shapes/train 2>/dev/null | wc -l)" -lt 1000 ]; then
  "$bin/mrcnn-train" --make-shapes data/shapes
fi
"$bin/mrcnn-config" init --preset shapes_tiny_cpu -o "$out/shapes.json" --force
# The full preset trains 1500 steps (about 14 minutes on 2 cores); the demo runs a third of it.
"$bin/mrcnn-config" set "$out/shapes.json" train.steps=500 train.eval_period=125
"$bin/mrcnn-config" validate "$out/shapes.json"

say "train the tiny preset from scratch on shapes (a few minutes on 2 CPU cores)"
rm -rf "$out/shapes-run"
"$bin/mrcnn-train" --config "$out/shapes.json" --output-dir "$out/shapes-run" --device cpu --tensorboard

say "detect on the validation images and score the results as pycocotools would"
"$bin/mrcnn-infer" --config "$out/shapes.json" --weights "$out/shapes-run/model_final.safetensors" \
  --coco data/shapes/val.json --image-root data/shapes/val --output "$out/shapes-detections.json" \
  --score-threshold 0.05 --device cpu
"$bin/mrcnn-eval" --gt data/shapes/val.json --dt "$out/shapes-detections.json" --per-class \
  --json "$out/shapes-metrics.json"

say "draw the detections of a few validation images into $out/overlays"
"$bin/mrcnn-infer" --config "$out/shapes.json" --weights "$out/shapes-run/model_final.safetensors" \
  --input data/shapes/val/10000?.png --output "$out/overlay-detections.json" --overlay-dir "$out/overlays" \
  --device cpu

say "ground truth next to predictions (matches, misses, false positives), as one contact sheet"
"$bin/mrcnn-visualize" compare --coco data/shapes/val.json --image-root data/shapes/val \
  --results "$out/shapes-detections.json" --score-threshold 0.5 -o "$out/compare" --max-images 12
"$bin/mrcnn-visualize" grid --images "$out/compare" -o "$out/compare-sheet.png" --columns 4 --cell-width 300

say "training curves and precision-recall curves"
"$bin/mrcnn-visualize" curves --metrics "$out/shapes-run/metrics.jsonl" -o "$out/training-curves.png"
"$bin/mrcnn-visualize" pr --gt data/shapes/val.json --dt "$out/shapes-detections.json" -o "$out/pr-curves.png"

say "the resolved configuration is in $out/pennfudan.resolved.json"
"$bin/mrcnn-config" show "$out/pennfudan.json" > "$out/pennfudan.resolved.json"
say "demo done: trained weights, detections, metrics, overlays, comparisons and curves are in $out"
