"""Small-object figures (issue #19), each measured in the same run against its baseline:

1. anchors: the small-shapes set (256 px crops of the 2048 px scenes' density) trained twice with the
   same steps and seed, the preset's default anchors against `mrcnn-config anchors --apply`'s
   proposal: each one's anchor positive share, segm AP and AP_small on the val split;
2. tiles: on 2048x2048 small-shapes scenes, the fitted model run on the whole image (downscaled to
   model.max_size, as mrcnn-infer always did) against tiled at native resolution: segm AP, AP_small
   (scored with --max-dets 300: the scenes hold up to 200 shapes) and seconds per image;
3. Penn-Fudan (--pennfudan-minutes M > 0): the from-scratch CPU preset trained M minutes on 150
   photos, the 20 others (a seeded sample) scored plain, tiled, and tiled with the whole-image pass
   (tiles cut most pedestrians, so this checks the merge).

Prints the tables for docs/BENCHMARKS.md and writes them with every number to WORKDIR/results.json.
Run it on a quiet machine: the times are only comparable within one run. Finished training runs in
WORKDIR are reused, so a second run of the script redoes only the scoring and the tile figures."""
import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("MRCNN_BIN_DIR", ROOT / "build" / "tools"))
PENNFUDAN = ROOT.parent / "shared" / "data" / "pennfudan"


def tool(name, *args, cwd, env=None, log=None):
    """Runs an mrcnn tool; on failure prints its stderr and stops the benchmark."""
    command = [str(BIN / name), *map(str, args)]
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    if log:
        Path(log).write_text(result.stderr)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result, time.monotonic() - started


def make_data(work, args):
    small = work / "small256"
    scenes = work / "small2048"
    if not (small / "val.json").exists():
        tool("mrcnn-train", "--make-shapes", small, "--small", "--shapes-size", 256, "--shapes-train",
             args.train_images, "--shapes-val", 100, cwd=work)
    if not (scenes / "val.json").exists():
        tool("mrcnn-train", "--make-shapes", scenes, "--small", "--shapes-train", 1, "--shapes-val",
             args.scenes, cwd=work)
    return small, scenes


def base_config(work, small, args):
    cfg = json.loads((ROOT / "configs" / "shapes_small_cpu.json").read_text())
    cfg.pop("description", None)
    cfg["data"]["train"].update(images=str(small / "train"), annotations=str(small / "train.json"),
                                label_map=str(ROOT / "configs" / "label_maps" / "shapes.pbtxt"))
    cfg["data"]["val"].update(images=str(small / "val"), annotations=str(small / "val.json"))
    cfg["train"].update(steps=args.steps, eval_period=args.steps, checkpoint_period=args.steps, seed=42)
    cfg["train"]["lr_schedule"]["warmup_steps"] = min(cfg["train"]["lr_schedule"]["warmup_steps"], args.steps)
    cfg["model"]["roi"]["detections_per_img"] = 300  # a 2048 px scene holds up to 200 shapes
    path = work / "default_anchors.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def positive_share(buckets):
    everything = [b for b in buckets if b["name"] == "all"]
    chosen = everything or buckets
    return sum(b["positive"] for b in chosen) / max(1, sum(b["boxes"] for b in chosen))


def fit_anchors(work, base):
    fitted = work / "fitted_anchors.json"
    report = work / "anchors_report.json"
    tool("mrcnn-config", "anchors", base, "--apply", "-o", fitted, "--json", report, cwd=work)
    tool("mrcnn-visualize", "anchors", report, "-o", work / "anchors.png", cwd=work)
    doc = json.loads(report.read_text())
    return fitted, {"default": positive_share(doc["current"]["buckets"]),
                    "fitted": positive_share(doc["proposed"]["buckets"]),
                    "proposed_sizes": doc["proposed"]["sizes"], "proposed_ratios": doc["proposed"]["aspect_ratios"]}


def evaluate(work, gt, results, name):
    metrics = work / f"{name}.metrics.json"
    tool("mrcnn-eval", "--gt", gt, "--dt", results, "--max-dets", 300, "--json", metrics, cwd=work)
    doc = json.loads(metrics.read_text())
    return {t: {k: doc[t][k] for k in ("AP", "AP50", "APs", "AR100")} for t in ("bbox", "segm")}


def train_and_score(work, config, name, threads):
    run = work / f"run-{name}"
    model = run / "model.safetensors"
    timing = run / "bench_train_seconds.txt"
    if not timing.exists():  # a finished run is kept: rerunning the script redoes only what follows
        _, seconds = tool("mrcnn-train", "--config", config, "--output-dir", run, "--device", "cpu", cwd=work,
                          log=work / f"train-{name}.log")
        timing.write_text(f"{seconds}\n")
    seconds = float(timing.read_text())
    cfg = json.loads(Path(config).read_text())
    results = work / f"{name}.val.results.json"
    tool("mrcnn-infer", "--model", model, "--coco", cfg["data"]["val"]["annotations"], "--image-root",
         cfg["data"]["val"]["images"], "-o", results, "--device", "cpu", "--threads", threads, "--score-threshold",
         0.05, cwd=work)
    return model, {"train_minutes": seconds / 60, **evaluate(work, cfg["data"]["val"]["annotations"], results, name)}


def infer_scenes(work, model, scenes, name, threads, *tile_flags):
    results = work / f"{name}.results.json"
    images = len(json.loads((scenes / "val.json").read_text())["images"])
    _, seconds = tool("mrcnn-infer", "--model", model, "--coco", scenes / "val.json", "--image-root", scenes / "val", "-o",
                      results, "--device", "cpu", "--threads", threads, "--score-threshold", 0.05, *tile_flags,
                      cwd=work)
    return {"seconds_per_image": seconds / images, **evaluate(work, scenes / "val.json", results, name)}


def pennfudan_split(work, held_out=20):
    """Train and held-out folders of links into the Penn-Fudan photos and masks: the held-out ones a
    seeded sample of the sorted names, so mrcnn-eval --config scores exactly the photos training
    never saw."""
    names = sorted(p.name for p in (PENNFUDAN / "PNGImages").glob("*.png"))
    val = set(random.Random(42).sample(names, held_out))
    for part in ("train", "val"):
        for kind in ("img", "mask"):
            (work / "pennfudan" / part / kind).mkdir(parents=True, exist_ok=True)
    for name in names:
        folder = work / "pennfudan" / ("val" if name in val else "train")
        mask = name.replace(".png", "_mask.png")
        for link, target in ((folder / "img" / name, PENNFUDAN / "PNGImages" / name),
                             (folder / "mask" / mask, PENNFUDAN / "PedMasks" / mask)):
            if not link.is_symlink():
                link.symlink_to(target)
    return {part: {"format": "mask_png", "images": str(work / "pennfudan" / part / "img"),
                   "annotations": str(work / "pennfudan" / part / "mask"),
                   "label_map": str(ROOT / "configs" / "label_maps" / "pennfudan.pbtxt")} for part in ("train", "val")}


def pennfudan(work, minutes, tile, steps=1120):
    cfg = json.loads((ROOT / "configs" / "pennfudan_scratch_cpu.json").read_text())
    cfg.pop("description", None)
    split = pennfudan_split(work)
    cfg["data"]["train"].update(split["train"])
    cfg["data"]["val"] = split["val"]
    cfg["data"]["val_fraction"] = 0
    cfg["model"]["fpn_channels"] = 128
    cfg["train"].update(steps=steps, eval_period=steps, checkpoint_period=280)
    config = work / "pennfudan.json"
    config.write_text(json.dumps(cfg, indent=2))
    run = work / "run-pennfudan"
    if not (run / "model.safetensors").exists():
        tool("mrcnn-train", "--config", config, "--output-dir", run, "--device", "cpu", "--time-limit", minutes,
             cwd=work, log=work / "train-pennfudan.log")
    gt = work / "pennfudan-val.coco.json"
    tool("mrcnn-config", "export-coco", config, "--set", "val", "-o", gt, "--force", cwd=work)
    out, detections = {}, {}
    for name, extra in (("plain", {}), (f"tiles {tile}", {"tile": {"size": tile}}),
                        (f"tiles {tile} + whole", {"tile": {"size": tile, "full_image": True}})):
        variant = json.loads(config.read_text())
        variant.setdefault("infer", {}).update(extra)
        stem = f"pennfudan-{name.replace(' ', '_').replace('+', 'and')}"
        path = work / f"{stem}.json"
        path.write_text(json.dumps(variant, indent=2))
        detections[name] = work / f"{stem}.results.json"
        _, seconds = tool("mrcnn-infer", "--config", path, "--weights", run / "model.safetensors", "--dataset", "val",
                          "-o", detections[name], "--score-threshold", 0, "--device", "cpu", cwd=work)
        out[name] = {"seconds": seconds, **evaluate(work, gt, detections[name], stem)}
    for name in list(out)[1:]:
        out[name]["bootstrap"] = paired_bootstrap(gt, detections["plain"], detections[name])
    return out


def coco_ap(gt, dt, ids, iou_type):
    """pycocotools AP of the detections on the images `ids`, repeats allowed (a bootstrap sample):
    each drawn image becomes a new image id, with its ground truth and detections."""
    import contextlib
    import io
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    images = {im["id"]: im for im in gt["images"]}
    sample = {"images": [], "annotations": [], "categories": gt["categories"]}
    results = []
    for new_id, old_id in enumerate(ids, 1):
        sample["images"].append({**images[old_id], "id": new_id})
        sample["annotations"] += [{**a, "image_id": new_id, "id": len(sample["annotations"]) + k + 1}
                                  for k, a in enumerate(gt["by_image"].get(old_id, []))]
        results += [{**d, "image_id": new_id} for d in dt["by_image"].get(old_id, [])]
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = sample
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[0]


def paired_bootstrap(gt_path, plain_path, tiled_path, rounds=300):
    """The 95% interval of AP(tiled) - AP(plain) over image sets drawn with replacement from the
    held-out photos (the same draw for both): how far apart the two could be by the choice of
    photos alone."""
    def by_image(records):
        out = {}
        for r in records:
            out.setdefault(r["image_id"], []).append(r)
        return out
    gt = json.loads(Path(gt_path).read_text())
    gt["by_image"] = by_image(gt["annotations"])
    plain = {"by_image": by_image(json.loads(Path(plain_path).read_text()))}
    tiled = {"by_image": by_image(json.loads(Path(tiled_path).read_text()))}
    ids = [im["id"] for im in gt["images"]]
    rng = random.Random(7)
    out = {}
    for iou_type in ("bbox", "segm"):
        diffs = []
        for _ in range(rounds):
            draw = [rng.choice(ids) for _ in ids]
            diffs.append(coco_ap(gt, tiled, draw, iou_type) - coco_ap(gt, plain, draw, iou_type))
        diffs.sort()
        out[iou_type] = [diffs[int(0.025 * rounds)], diffs[int(0.975 * rounds) - 1]]
    return out


def table(title, header, rows):
    lines = [f"\n{title}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(results):
    a = results["anchors"]
    out = [table("Anchors: default vs fitted, same steps and seed", ["anchors", "positive share", "segm AP",
                 "segm AP_small", "bbox AP", "train minutes"],
                 [[name, f"{a['share'][name]:.3f}", f"{a[name]['segm']['AP']:.3f}", f"{a[name]['segm']['APs']:.3f}",
                   f"{a[name]['bbox']['AP']:.3f}", f"{a[name]['train_minutes']:.1f}"] for name in ("default", "fitted")])]
    t = results["tiles"]
    out.append(table("Tiles: 2048 px scenes, whole image vs tiled (maxDets 300)", ["inference", "segm AP",
                     "segm AP_small", "segm AR", "s/image"],
                     [[name, f"{t[name]['segm']['AP']:.3f}", f"{t[name]['segm']['APs']:.3f}",
                       f"{t[name]['segm']['AR100']:.3f}", f"{t[name]['seconds_per_image']:.2f}"] for name in t]))
    if "pennfudan" in results:
        p = results["pennfudan"]
        def interval(n, t):
            if "bootstrap" not in p[n]:
                return "-"
            low, high = p[n]["bootstrap"][t]
            return f"{p[n][t]['AP'] - p['plain'][t]['AP']:+.3f} [{low:+.3f}, {high:+.3f}]"
        out.append(table("Penn-Fudan held-out 20: plain vs tiled (difference with its paired-bootstrap 95% interval)",
                         ["inference", "bbox AP", "segm AP", "segm AP50", "bbox AP - plain", "segm AP - plain", "s/image"],
                         [[n, f"{p[n]['bbox']['AP']:.3f}", f"{p[n]['segm']['AP']:.3f}", f"{p[n]['segm']['AP50']:.3f}",
                           interval(n, "bbox"), interval(n, "segm"), f"{p[n]['seconds'] / 20:.2f}"] for n in p]))
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="training steps of each anchor run (default 600)")
    parser.add_argument("--train-images", type=int, default=1000, help="256 px training images (default 1000)")
    parser.add_argument("--scenes", type=int, default=10, help="2048 px scenes for the tile figure (default 10)")
    parser.add_argument("--tile", type=int, default=256, help="tile side for the scenes (default 256: the training scale)")
    parser.add_argument("--threads", type=int, default=2, help="inference threads (training uses all cores)")
    parser.add_argument("--pennfudan-minutes", type=float, default=0, help="train Penn-Fudan this long (0: skip)")
    parser.add_argument("--pennfudan-steps", type=int, default=1120,
                        help="Penn-Fudan schedule length (default 1120: 30 idle minutes on 2 cores)")
    parser.add_argument("--pennfudan-tile", type=int, default=256, help="tile side for Penn-Fudan (default 256)")
    parser.add_argument("--workdir", default="bench-small-objects", help="kept for inspection (default ./bench-small-objects)")
    args = parser.parse_args()
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    small, scenes = make_data(work, args)
    base = base_config(work, small, args)
    fitted, share = fit_anchors(work, base)
    results = {"anchors": {"share": share}, "tiles": {}}
    models = {}
    for name, config in (("default", base), ("fitted", fitted)):
        models[name], results["anchors"][name] = train_and_score(work, config, name, args.threads)
    t = results["tiles"]
    t["whole image"] = infer_scenes(work, models["fitted"], scenes, "whole", args.threads)
    t[f"tiles {args.tile}"] = infer_scenes(work, models["fitted"], scenes, "tiled", args.threads, "--tile", args.tile)
    t[f"tiles {args.tile} + whole"] = infer_scenes(work, models["fitted"], scenes, "tiled_full", args.threads, "--tile",
                                                   args.tile, "--tile-full-image")
    if args.pennfudan_minutes > 0:
        results["pennfudan"] = pennfudan(work, args.pennfudan_minutes, args.pennfudan_tile, args.pennfudan_steps)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()
