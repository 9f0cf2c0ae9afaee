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
[ -f data/shapes/val.json ] || "$bin/mrcnn-train" --make-shapes data/shapes
"$bin/mrcnn-config" init --preset shapes_tiny_cpu -o "$out/shapes.json" --force
"$bin/mrcnn-config" validate "$out/shapes.json"

say "the resolved configuration is in $out/pennfudan.resolved.json"
"$bin/mrcnn-config" show "$out/pennfudan.json" > "$out/pennfudan.resolved.json"
for tool in mrcnn-train mrcnn-infer mrcnn-eval mrcnn-visualize; do "$bin/$tool" --version; done
say "demo done: training on shapes, then inference, evaluation and overlays of the trained model, join this demo with issue #5"
