"""The TF OD API's Mask R-CNN (Inception-ResNet-v2, the published
mask_rcnn_inception_resnet_v2_1024x1024 config's model block with a fixed_shape_resizer at --size)
on the CPU: TensorFlow's own detection function against mrcnn-infer on the same checkpoint and the
same Penn-Fudan photos, one process after the other in the same run, both with --threads threads.
Prints the median seconds per image after a warm-up, each process's peak RSS, the ratio, and
mrcnn-infer's median stage times.

  .venv/bin/python scripts/bench_tfod.py [--size 640] [--runs 3] [--photos 3] [--threads 2] [--ckpt PREFIX]

Without --ckpt the reference (../shared/tfod-reference/reference.py, venv in .tfod/) first writes
its seeded, perturbed and calibrated checkpoint of the model (90 classes; calibrated at 320 px with 8
proposals, which changes no variable's shape; about 2 minutes). `mrcnn-config import-tf
--checkpoint --save-model` converts it. TF runs model.preprocess + predict + postprocess and the
masks reframed into the image (as the OD API's exported models and its colab do) in one
tf.function with the exported models' input signature (uint8 [1, H, W, 3], traced once), on
already decoded pixels; mrcnn-infer's per-image "took" lines likewise leave out decoding. Both keep
every detection (score threshold 0, at most 100 per image as the config says)."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TF_WORKER = r"""
import json, os, sys, time
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.environ['TFOD_SRC'])
import numpy as np, tensorflow as tf
config, ckpt, runs, threads, images = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
from object_detection.builders import model_builder
from object_detection.utils import config_util, ops
model = model_builder.build(model_config=config_util.get_configs_from_pipeline_file(config)['model'],
                            is_training=False)

@tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
def detect(image):
    pre, shapes = model.preprocess(tf.cast(image, tf.float32))
    det = model.postprocess(model.predict(pre, shapes), shapes)
    masks = ops.reframe_box_masks_to_image_masks(det['detection_masks'][0], det['detection_boxes'][0],
                                                 tf.shape(image)[1], tf.shape(image)[2])
    return det['detection_boxes'], det['detection_scores'], det['detection_classes'], tf.cast(masks > 0.5, tf.uint8)

pixels = [tf.io.decode_image(tf.io.read_file(p), channels=3, expand_animations=False)[tf.newaxis] for p in images]
detect(pixels[0])  # creates the variables and traces
tf.train.Checkpoint(model=model).restore(ckpt).assert_existing_objects_matched()
seconds, detections = [], []
for image in [pixels[0]] + pixels * runs:  # a warm-up, then the timed passes
    start = time.perf_counter()
    out = [t.numpy() for t in detect(image)]
    seconds.append(time.perf_counter() - start)
    detections.append(int((out[1][0] > 0).sum()))
print(json.dumps({'seconds': seconds, 'detections': detections}))
"""


def peak_of(command, cwd, env=None):
    """As run_child, with the child's own peak RSS from wait4 (communicate() would reap it first)."""
    process = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    out, err = [], []
    readers = [threading.Thread(target=lambda s, d: d.append(s.read()), args=(process.stdout, out)),
               threading.Thread(target=lambda s, d: d.append(s.read()), args=(process.stderr, err))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"{command[0]} failed ({process.returncode}):\n{err[0][-4000:]}")
    return out[0], err[0], usage.ru_maxrss / 1024


def main():
    from cli.test_tf_checkpoint import IRV2_CONFIG
    from mrcnn_testing import TFOD_DIR, TFOD_SETUP, sample_images, tensorflow_python

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--runs", type=int, default=3, help="timed passes over the photos")
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ckpt", help="a checkpoint prefix of this model (90 classes) to reuse")
    args = parser.parse_args()
    python = tensorflow_python()
    env = {**os.environ, "TFOD_SRC": str(TFOD_DIR / "src")}
    tools = ROOT / "build" / "tools"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "pipeline.config").write_text(
            IRV2_CONFIG.replace("height: 1024 width: 1024", f"height: {args.size} width: {args.size}"))
        photos = sample_images(tmp / "photos", args.photos)
        ckpt = args.ckpt
        if not ckpt:
            peak_of([python, TFOD_SETUP.with_name("reference.py"), "--config", "pipeline.config", "--image", photos[0],
                     "--size", "320", "--num_classes", "90", "--max_proposals", "8", "--runs", "1",
                     "--list_vars", "0", "--perturb", "--ckpt_dir", "ref"], tmp, env)
            ckpt = str(tmp / "ref" / "ckpt-1")
        peak_of([tools / "mrcnn-config", "import-tf", "pipeline.config", "-o", "model.json", "--checkpoint", ckpt,
                 "--save-model", "model.safetensors"], tmp)
        # mrcnn-infer's folder: the warm-up image, then the timed passes in order.
        passes = tmp / "passes"
        passes.mkdir()
        shutil.copy(photos[0], passes / "a_warmup.png")
        for r in range(args.runs):
            for i, photo in enumerate(photos):
                shutil.copy(photo, passes / f"r{r}_{i}.png")
        tf_out, _, tf_peak = peak_of([python, "-c", TF_WORKER, "pipeline.config", ckpt, args.runs, args.threads,
                                      *photos], tmp, env)
        tf_result = json.loads(tf_out.strip().splitlines()[-1])
        _, stderr, our_peak = peak_of([tools / "mrcnn-infer", "--model", "model.safetensors", "-i", passes,
                                       "-o", "dt.json", "--threads", args.threads, "--score-threshold", "0",
                                       "--device", "cpu", "--verbose"], tmp)
        ours = [float(line.split(" took ")[1].split(" s")[0]) for line in stderr.splitlines() if "image took " in line]
        stages = {}
        for line in stderr.splitlines():
            match = re.search(r"  ([a-z +]+): ([0-9.]+) ms$", line)
            if match:
                stages.setdefault(match.group(1), []).append(float(match.group(2)))
        our_detections = len(json.loads((tmp / "dt.json").read_text())) / len(ours)
    tf_median, our_median = statistics.median(tf_result["seconds"][1:]), statistics.median(ours[1:])
    print(f"TF OD API Mask R-CNN Inception-ResNet-v2, fixed_shape_resizer {args.size}x{args.size}, 300 proposals, "
          f"90 classes; CPU, {args.threads} threads ({os.cpu_count()} cores); {args.photos} Penn-Fudan photos x "
          f"{args.runs} passes after a warm-up")
    print(f"{'':22}{'s/image (median)':>18}{'min':>8}{'max':>8}{'peak RSS MiB':>14}{'detections/img':>16}")
    for name, seconds, peak, dets in [
            ("TF OD API (TF 2.21)", tf_result["seconds"], tf_peak, statistics.mean(tf_result["detections"])),
            ("mrcnn-infer", ours, our_peak, our_detections)]:
        print(f"{name:22}{statistics.median(seconds[1:]):18.3f}{min(seconds[1:]):8.3f}{max(seconds[1:]):8.3f}"
              f"{peak:14.0f}{dets:16.1f}")
    print(f"TF time / mrcnn time: {tf_median / our_median:.2f}x; mrcnn peak RSS / TF's: {our_peak / tf_peak:.2f}")
    if stages:
        print("mrcnn-infer stages (median ms): " + ", ".join(
            f"{name} {statistics.median(values[1:] or values):.0f}" for name, values in stages.items()))
    else:  # the tf_faster_rcnn family's detection path logs no stage laps (as of this script)
        print("mrcnn-infer logged no stage times for this model family")
    print("warm-up image: TF %.3f s, mrcnn %.3f s" % (tf_result["seconds"][0], ours[0]))


if __name__ == "__main__":
    main()
