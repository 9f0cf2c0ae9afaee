"""Inception-ResNet-v2 first stage (image → block17_20_ac) on the CPU at 640x640: mrcnn's backbone
(tests/tools/inception_dump, loaded from a TF OD API checkpoint, batch norms folded, NHWC)
against the TF OD API's own feature extractor (tf.function, oneDNN as TF ships it), in the same
run, on the same preprocessed input. Prints seconds per forward (median of --runs after one
warm-up), each process's resident memory before its first forward and its peak.

  .venv/bin/python scripts/bench_inception.py [--size 640] [--runs 5] [--ckpt PREFIX]

Without --ckpt, the reference (../shared/tfod-reference/reference.py, venv in .tfod/) first writes
a checkpoint of the Mask R-CNN Inception-ResNet-v2 at 320x320 (about 2 minutes); the weights do not
change the time."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TF_WORKER = r"""
import json, os, resource, sys, time
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.environ['TFOD_SRC'])
import numpy as np, tensorflow as tf
from object_detection.builders import model_builder
from object_detection.utils import config_util
config, image_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
model_config = config_util.get_configs_from_pipeline_file(config)['model']
model = model_builder.build(model_config=model_config, is_training=False)
image = tf.constant(np.load(image_path))
features = tf.function(lambda x: model._extract_proposal_features(x)[0])
features(image)  # builds the extractor and traces
rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
before = rss()
seconds = []
for _ in range(runs):
    start = time.perf_counter(); features(image).numpy(); seconds.append(time.perf_counter() - start)
print(json.dumps({'seconds': seconds, 'rss_before_mb': before,
                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def main():
    import numpy as np
    import torch

    from cli.test_tf_checkpoint import IRV2_CONFIG
    from mrcnn_testing import TFOD_DIR, TFOD_SETUP, sample_images, tensorflow_python

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ckpt", help="a TF OD API Mask R-CNN Inception-ResNet-v2 checkpoint prefix")
    args = parser.parse_args()
    python = tensorflow_python()
    env = {**os.environ, "TFOD_SRC": str(TFOD_DIR / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "irv2.config").write_text(IRV2_CONFIG)
        ckpt = args.ckpt
        if not ckpt:
            [image] = sample_images(tmp / "images", 1)
            subprocess.run([str(python), str(TFOD_SETUP.with_name("reference.py")), "--config", "irv2.config",
                            "--image", str(image), "--size", "320", "--max_proposals", "8", "--runs", "1",
                            "--list_vars", "0", "--ckpt_dir", "ref"], cwd=tmp, env=env, check=True,
                           capture_output=True)
            ckpt = str(tmp / "ref" / "ckpt-1")
        # A preprocessed image in [-1, 1], as the extractor's preprocess gives.
        pixels = np.random.default_rng(0).uniform(-1, 1, (1, args.size, args.size, 3)).astype(np.float32)
        np.save(tmp / "image.npy", pixels)
        torch.save({"image": torch.from_numpy(pixels)}, tmp / "image.pt")
        tf_result = last_json(subprocess.run([str(python), "-c", TF_WORKER, "irv2.config", "image.npy",
                                              str(args.runs + 1)], cwd=tmp, env=env, check=True,
                                             capture_output=True, text=True).stdout)
        ours = last_json(subprocess.run([str(ROOT / "build" / "tests" / "inception_dump"), ckpt, str(tmp / "image.pt"),
                                         os.devnull, "--runs", str(args.runs + 1)], check=True,
                                        capture_output=True, text=True).stdout)
    print(f"Inception-ResNet-v2 to block17_20_ac, {args.size}x{args.size}, CPU ({os.cpu_count()} cores), "
          f"median of {args.runs} after a warm-up")
    print(f"{'':22}{'s/forward':>10}{'RSS before MiB':>16}{'peak MiB':>10}{'peak - before':>15}")
    for name, r in [("TF OD API (TF 2.21)", tf_result), ("mrcnn", ours)]:
        median = statistics.median(r["seconds"][1:])
        print(f"{name:22}{median:10.3f}{r['rss_before_mb']:16.0f}{r['peak_mb']:10.0f}"
              f"{r['peak_mb'] - r['rss_before_mb']:15.0f}")
    print(f"speed-up: {statistics.median(tf_result['seconds'][1:]) / statistics.median(ours['seconds'][1:]):.2f}x")


if __name__ == "__main__":
    main()
