"""Negatives figure (issue #20): does training on images without objects lower the false positives?

The shapes set (squares, circles, triangles on noisy gray) is trained twice with the same steps and
seed: once on its positive images only, once with as many negative images added (COCO images
without annotations, kept by data.keep_empty_images). The negatives hold distractors the model
never has to find: rings, crosses and long bars in the shapes' colours. Both models then run on
held-out negatives (other seed) and on the shapes' val split: false positives per empty image at
scores >= 0.5 and >= 0.3, and the val bbox / segm AP. A third run trains on positives and negatives
for twice the steps, so that it sees each positive image as often as the positives-only run.

Prints the table for docs/BENCHMARKS.md and writes every number to WORKDIR/results.json. Finished
training runs in WORKDIR are reused."""
import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("MRCNN_BIN_DIR", ROOT / "build" / "tools"))


def tool(name, *args, cwd, log=None):
    """Runs an mrcnn tool; on failure prints its stderr and stops the benchmark."""
    command = [str(BIN / name), *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if log:
        Path(log).write_text(result.stderr)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def distractor_image(rng, size):
    """Noisy gray (as the shapes' background) with 2-4 rings, crosses or bars of random colour."""
    gray = rng.uniform(60, 190)
    pixels = np.clip(gray + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 12, (size, size, 3)), 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 4)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x, y, r = rng.uniform(10, size - 10), rng.uniform(10, size - 10), rng.uniform(6, size / 5)
        kind = rng.choice(["ring", "cross", "bar"])
        if kind == "ring":
            draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=max(2, int(r / 4)))
        elif kind == "cross":
            w = max(2, r / 3)
            draw.rectangle([x - r, y - w, x + r, y + w], fill=colour)
            draw.rectangle([x - w, y - r, x + w, y + r], fill=colour)
        else:
            draw.line([x - r, y - r / 3, x + r, y + r / 3], fill=colour, width=max(2, int(r / 5)))
    return image


def write_negatives(folder, count, size, seed):
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for k in range(count):
        distractor_image(rng, size).save(folder / f"neg{k:04d}.png")
    return sorted(folder.glob("*.png"))


def with_negatives(shapes, negatives, path):
    """shapes/train.json with the negatives added as images without annotations."""
    doc = json.loads((shapes / "train.json").read_text())
    first = max(i["id"] for i in doc["images"]) + 1
    for k, image in enumerate(negatives):
        w, h = Image.open(image).size
        doc["images"].append({"id": first + k, "file_name": str(image.resolve()), "width": w, "height": h})
    path.write_text(json.dumps(doc))


def config(work, shapes, annotations, args, name, steps):
    cfg = json.loads((ROOT / "configs" / "shapes_tiny_cpu.json").read_text())
    cfg.pop("description", None)
    cfg["model"].update(min_size=[args.size], max_size=args.size)
    cfg["data"]["train"].update(images=str(shapes / "train"), annotations=str(annotations),
                                label_map=str(ROOT / "configs" / "label_maps" / "shapes.pbtxt"))
    cfg["data"]["val"].update(images=str(shapes / "val"), annotations=str(shapes / "val.json"))
    cfg["train"].update(steps=steps, eval_period=steps, checkpoint_period=steps, seed=42)
    cfg["train"]["lr_schedule"]["warmup_steps"] = min(cfg["train"]["lr_schedule"]["warmup_steps"], steps)
    path = work / f"{name}.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def score(work, model, shapes, test_negatives, name, threads):
    """False positives per held-out empty image, and the val AP."""
    fp = work / f"{name}.negatives.results.json"
    tool("mrcnn-infer", "--model", model, "-i", test_negatives, "-o", fp, "--device", "cpu", "--threads", threads,
         "--score-threshold", 0.05, cwd=work)
    detections = json.loads(fp.read_text())
    images = len(list(Path(test_negatives).glob("*.png")))
    val = work / f"{name}.val.results.json"
    tool("mrcnn-infer", "--model", model, "--coco", shapes / "val.json", "--image-root", shapes / "val", "-o", val,
         "--device", "cpu", "--threads", threads, "--score-threshold", 0.05, cwd=work)
    metrics = work / f"{name}.metrics.json"
    tool("mrcnn-eval", "--gt", shapes / "val.json", "--dt", val, "--json", metrics, cwd=work)
    doc = json.loads(metrics.read_text())
    return {"fp_per_empty_image@0.5": sum(d["score"] >= 0.5 for d in detections) / images,
            "fp_per_empty_image@0.3": sum(d["score"] >= 0.3 for d in detections) / images,
            "val_bbox_AP": doc["bbox"]["AP"], "val_segm_AP": doc["segm"]["AP"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--train-images", type=int, default=300, help="positives; as many negatives are added")
    parser.add_argument("--test-negatives", type=int, default=100)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=str(ROOT / "build" / "bench_negatives"))
    args = parser.parse_args()
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    shapes = work / "shapes"
    if not (shapes / "val.json").exists():
        tool("mrcnn-train", "--make-shapes", shapes, "--shapes-train", args.train_images, "--shapes-val", 50,
             "--shapes-size", args.size, cwd=work)
    negatives = write_negatives(work / "neg_train", args.train_images, args.size, seed=1)
    write_negatives(work / "neg_test", args.test_negatives, args.size, seed=2)
    with_negatives(shapes, negatives, work / "train_with_negatives.json")
    results = {}
    # Half of each batch is now empty images: the third run takes twice the steps, so it sees the
    # positives as often as the first.
    for name, annotations, steps in (("positives_only", shapes / "train.json", args.steps),
                                     ("with_negatives", work / "train_with_negatives.json", args.steps),
                                     ("with_negatives_2x_steps", work / "train_with_negatives.json", 2 * args.steps)):
        run = work / f"run-{name}"
        if not (run / "model.safetensors").exists():
            tool("mrcnn-train", "--config", config(work, shapes, annotations, args, name, steps), "--output-dir", run,
                 "--device", "cpu", cwd=work, log=work / f"train-{name}.log")
        results[name] = score(work, run / "model.safetensors", shapes, work / "neg_test", name, args.threads)
    (work / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print("| training set | FP per empty image (score >= 0.5) | (>= 0.3) | val bbox AP | val segm AP |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name.replace('_', ' ')} | {r['fp_per_empty_image@0.5']:.2f} | {r['fp_per_empty_image@0.3']:.2f} | "
              f"{r['val_bbox_AP']:.3f} | {r['val_segm_AP']:.3f} |")


if __name__ == "__main__":
    main()
