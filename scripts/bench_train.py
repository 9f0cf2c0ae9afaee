"""CPU training benchmark: mrcnn-train against a torchvision training loop, the same model
(ResNet-18 FPN Mask R-CNN built from one config), data (the shapes set), batch, optimiser,
schedule, steps and thread count. Prints each one's time per step (data included), peak memory
(max RSS), and the COCO mAP each model reaches on the val split, both scored by pycocotools.

The mask loss is set to BCE only (model.mask.dice_weight 0) so that both minimise the same loss;
augmentation is the horizontal flip both implement."""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("MRCNN_BIN_DIR", ROOT / "build" / "tools"))


def bench_config(preset, shapes, steps, batch):
    cfg = json.loads((ROOT / "configs" / f"{preset}.json").read_text())
    cfg.pop("description", None)
    cfg["model"].setdefault("mask", {})["dice_weight"] = 0.0
    cfg["data"]["train"] = {"format": "coco", "images": str(shapes / "train"),
                            "annotations": str(shapes / "train.json")}
    cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}  # scored afterwards, for both
    cfg["data"]["augmentation"] = [{"type": "horizontal_flip", "prob": 0.5}]
    cfg["train"].update({"steps": steps, "epochs": 0, "batch_size": batch, "log_period": 1,
                         "checkpoint_period": steps, "eval_period": steps})
    return cfg


def resolved(config_path):
    out = subprocess.run([str(BIN / "mrcnn-config"), "show", str(config_path)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def torchvision_model(cfg):
    """The torchvision MaskRCNN that the resolved config describes."""
    import torch
    from torchvision.models import resnet
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import misc

    m = cfg["model"]
    norm = torch.nn.BatchNorm2d if m["backbone_norm"] == "bn" else misc.FrozenBatchNorm2d
    body = getattr(resnet, m["backbone"])(weights=None, norm_layer=norm)
    channels = m["fpn_channels"]
    # _resnet_fpn_extractor, with the configured FPN width (it fixes 256).
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:m["trainable_backbone_layers"]]
    if m["trainable_backbone_layers"] == 5:
        trainable.append("bn1")
    for name, parameter in body.named_parameters():
        if not any(name.startswith(layer) for layer in trainable):
            parameter.requires_grad_(False)
    stage2 = body.inplanes // 8
    backbone = BackboneWithFPN(body, {f"layer{k}": str(k - 1) for k in range(1, 5)},
                               [stage2 * 2 ** (k - 1) for k in range(1, 5)], channels, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(tuple(tuple(s) for s in m["anchor"]["sizes"]),
                              (tuple(m["anchor"]["aspect_ratios"]),) * len(m["anchor"]["sizes"]))
    rpn, roi, mask = m["rpn"], m["roi"], m["mask"]
    width = mask["head_channels"]
    return MaskRCNN(
        backbone, num_classes=None, min_size=tuple(m["min_size"]), max_size=m["max_size"],
        image_mean=m["image_mean"], image_std=m["image_std"], rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=rpn["pre_nms_top_n_train"], rpn_pre_nms_top_n_test=rpn["pre_nms_top_n_test"],
        rpn_post_nms_top_n_train=rpn["post_nms_top_n_train"], rpn_post_nms_top_n_test=rpn["post_nms_top_n_test"],
        rpn_batch_size_per_image=rpn["batch_size_per_image"],
        box_head=TwoMLPHead(channels * 7 * 7, roi["representation_size"]),
        box_predictor=FastRCNNPredictor(roi["representation_size"], m["num_classes"]),
        box_batch_size_per_image=roi["batch_size_per_image"], box_detections_per_img=roi["detections_per_img"],
        mask_head=MaskRCNNHeads(channels, (width,) * 4, 1), mask_predictor=MaskRCNNPredictor(width, width, m["num_classes"]))


def learning_rate(train, step, total):
    """The same schedule as mrcnn's learning_rate(): warm-up, then constant, multistep or cosine."""
    s, base, factor = train["lr_schedule"], train["optimizer"]["lr"], 1.0
    if step < s["warmup_steps"]:
        alpha = step / s["warmup_steps"]
        factor = s["warmup_factor"] * (1 - alpha) + alpha
    if s["type"] == "multistep":
        factor *= s["gamma"] ** sum(step >= m for m in s["milestones"])
    elif s["type"] == "cosine":
        t = min(1.0, step / max(1, total))
        factor *= s["min_lr_factor"] + (1 - s["min_lr_factor"]) * 0.5 * (1 + math.cos(math.pi * t))
    return base * factor


def shuffled_batches(samples, batch, seed):
    """Endless batches of samples, each pass over them in a new order from one seeded stream."""
    rng = random.Random(seed)
    order = []
    while True:
        chosen = []
        for _ in range(batch):
            if not order:
                order = list(range(len(samples)))
                rng.shuffle(order)
            chosen.append(samples[order.pop()])
        yield chosen


def load_coco_samples(annotations, images):
    import numpy as np
    from PIL import Image
    from pycocotools.coco import COCO

    coco = COCO(str(annotations))
    samples = []
    for image_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(image_id)[0]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if not a.get("iscrowd", 0)]
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        samples.append({"id": image_id, "path": Path(images) / info["file_name"], "boxes": boxes,
                        "labels": [a["category_id"] for a in anns],
                        "masks": np.stack([coco.annToMask(a) for a in anns]) if anns else
                        np.zeros((0, info["height"], info["width"]), np.uint8),
                        "decode": lambda p: np.asarray(Image.open(p).convert("RGB"))})
    return coco, samples


def torchvision_worker(config_path, shapes, threads, out_path):
    import numpy as np
    import torch
    from pycocotools import mask as mask_utils

    torch.set_num_threads(threads)
    cfg = resolved(config_path)
    train = cfg["train"]
    torch.manual_seed(train["seed"])
    model = torchvision_model(cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = train["optimizer"]
    if opt["type"] == "adamw":
        optimizer = torch.optim.AdamW(params, lr=opt["lr"], betas=tuple(opt["betas"]), weight_decay=opt["weight_decay"])
    else:
        optimizer = torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"], weight_decay=opt["weight_decay"])
    _, samples = load_coco_samples(shapes / "train.json", shapes / "train")
    rng = random.Random(train["seed"])
    steps, batch = train["steps"], train["batch_size"]
    order, times, losses = [], [], []
    for step in range(steps):
        start = time.perf_counter()
        images, targets = [], []
        for _ in range(batch):
            if not order:
                order = list(range(len(samples)))
                rng.shuffle(order)
            s = samples[order.pop()]
            image = torch.from_numpy(s["decode"](s["path"]).copy()).permute(2, 0, 1).float().div(255)
            boxes = torch.tensor(s["boxes"], dtype=torch.float32).reshape(-1, 4)
            masks = torch.from_numpy(s["masks"])
            if rng.random() < 0.5:
                image, masks = image.flip(-1), masks.flip(-1)
                w = image.shape[-1]
                boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
            images.append(image)
            targets.append({"boxes": boxes, "labels": torch.tensor(s["labels"], dtype=torch.int64), "masks": masks})
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(train, step, steps)
        loss_dict = model(images, targets)
        loss = sum(loss_dict.values())
        optimizer.zero_grad()
        loss.backward()
        if train["grad_clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, train["grad_clip_norm"])
        optimizer.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    import resource
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Detections on the val split, in COCO results format.
    model.eval()
    _, val = load_coco_samples(shapes / "val.json", shapes / "val")
    results = []
    with torch.inference_mode():
        for s in val:
            image = torch.from_numpy(s["decode"](s["path"]).copy()).permute(2, 0, 1).float().div(255)
            out = model([image])[0]
            for box, score, label, m in zip(out["boxes"], out["scores"], out["labels"], out["masks"]):
                rle = mask_utils.encode(np.asfortranarray((m[0] > 0.5).numpy().astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                x1, y1, x2, y2 = box.tolist()
                results.append({"image_id": s["id"], "category_id": int(label), "score": float(score),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "segmentation": rle})
    Path(out_path).write_text(json.dumps(results))
    print(json.dumps({"step_seconds": statistics.mean(times[5:]), "peak_mb": peak_mb, "first_loss": losses[0],
                      "last_loss": statistics.mean(losses[-10:])}))


def coco_map(gt_path, dt_path):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt_records = json.loads(Path(dt_path).read_text())
        if not dt_records:
            return {"bbox": 0.0, "segm": 0.0, "segm50": 0.0}
        dt = gt.loadRes(str(dt_path))
        out = {}
        for iou_type in ("bbox", "segm"):
            e = COCOeval(gt, dt, iou_type)
            e.evaluate()
            e.accumulate()
            e.summarize()
            out[iou_type] = e.stats[0]
            out[iou_type + "50"] = e.stats[1]
    return out


def run_mrcnn(bin_dir, config, shapes, run_dir, threads):
    """mrcnn-train from bin_dir on the bench config, then its val mAP: s/step, peak RSS, losses."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen([str(bin_dir / "mrcnn-train"), "--config", str(config), "--output-dir", str(run_dir),
                                "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.exit(f"{bin_dir / 'mrcnn-train'} failed:\n{stderr}")
    records = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    ours = {"step_seconds": statistics.mean(r["time"] for r in steps[5:]), "peak_mb": usage.ru_maxrss / 1024,
            "first_loss": steps[0]["loss"], "last_loss": statistics.mean(r["loss"] for r in steps[-10:])}
    detections = run_dir / "val_detections.json"
    subprocess.run([str(bin_dir / "mrcnn-infer"), "--config", str(config), "--weights",
                    str(run_dir / "model_final.safetensors"), "--coco", str(shapes / "val.json"),
                    "--image-root", str(shapes / "val"), "--output", str(detections),
                    "--score-threshold", "0", "--device", "cpu", "--precision", "fp32"],  # as torchvision's is
                   check=True, capture_output=True)
    ours["map"] = coco_map(shapes / "val.json", detections)
    return ours


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--preset", default="shapes_tiny_cpu")
    parser.add_argument("--baseline-bin", help="also train with mrcnn-train from this folder (another build) in the "
                        "same run and print this build's speed and memory against it")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        torchvision_worker(Path(args.worker[0]), Path(args.worker[1]), args.threads, args.worker[2])
        return

    import torch

    tmp = Path(tempfile.mkdtemp(prefix="mrcnn_bench_train_"))
    shapes = ROOT / "data" / "shapes"
    if not (shapes / "val.json").exists():
        subprocess.run([str(BIN / "mrcnn-train"), "--make-shapes", str(shapes)], check=True)
    config = tmp / "bench.json"
    config.write_text(json.dumps(bench_config(args.preset, shapes, args.steps, args.batch)))

    # torchvision first, in its own process.
    reference = json.loads(subprocess.run(
        [sys.executable, __file__, "--threads", str(args.threads), "--worker", str(config), str(shapes),
         str(tmp / "torchvision_dt.json")], capture_output=True, text=True, check=True).stdout.splitlines()[-1])

    ours = run_mrcnn(BIN, config, shapes, tmp / "run", args.threads)
    baseline = run_mrcnn(Path(args.baseline_bin), config, shapes, tmp / "baseline", args.threads) \
        if args.baseline_bin else None
    reference["map"] = coco_map(shapes / "val.json", tmp / "torchvision_dt.json")

    print(f"preset {args.preset} (BCE mask loss), {args.steps} steps of batch {args.batch}, threads {args.threads}, "
          f"torch {torch.__version__}")
    rows = [("torchvision", reference), ("mrcnn", ours)] + ([("baseline", baseline)] if baseline else [])
    for name, r in rows:
        m = r["map"]
        print(f"{name:12s} {r['step_seconds']:.3f} s/step, peak {r['peak_mb']:.0f} MB, loss {r['first_loss']:.3f} -> "
              f"{r['last_loss']:.3f}, val bbox AP {m['bbox']:.3f}, segm AP {m['segm']:.3f} (AP50 {m['segm50']:.3f})")
    print(f"speed-up: {reference['step_seconds'] / ours['step_seconds']:.2f}x, memory ratio (ours/torchvision): "
          f"{ours['peak_mb'] / reference['peak_mb']:.2f}, segm AP difference (ours - torchvision): "
          f"{ours['map']['segm'] - reference['map']['segm']:+.3f}, bbox AP difference: "
          f"{ours['map']['bbox'] - reference['map']['bbox']:+.3f}")
    if baseline:
        print(f"this build against the baseline ({args.baseline_bin}): "
              f"{baseline['step_seconds'] / ours['step_seconds']:.2f}x speed, "
              f"{ours['peak_mb'] / baseline['peak_mb']:.2f}x memory; baseline against torchvision: "
              f"{reference['step_seconds'] / baseline['step_seconds']:.2f}x")


if __name__ == "__main__":
    main()
