"""GPU training benchmark: mrcnn-train against a torchvision training loop of the same model
(maskrcnn_resnet50_fpn as configs/maskrcnn_resnet50_fpn_coco.json describes it, random init),
on the same GPU, the same synthetic 1333x800 images with polygons, batch, optimiser and mixed
precision (--amp off|bf16|fp16). Prints each one's time per step (median after warm-up; ours from
metrics.jsonl, data loading included), images/s and peak GPU memory (torch.cuda.max_memory_allocated
for torchvision; the caching allocator's peak allocated bytes that mrcnn-train records for ours).

torchvision's images and targets are decoded once and kept on the GPU (its loop measures the model
alone); mrcnn-train decodes on its loader threads while the GPU works."""
import argparse
import json
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
WIDTH, HEIGHT = 1333, 800


def make_polygons_set(folder, images, objects, seed):
    """images PNGs of WIDTH x HEIGHT, each with `objects` random convex polygons (COCO polygons)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    folder.mkdir(parents=True)
    coco = {"images": [], "annotations": [], "categories": [{"id": k, "name": f"shape{k}"} for k in (1, 2, 3)]}
    noise = np.random.default_rng(seed)
    for i in range(images):
        background = (noise.random((HEIGHT, WIDTH, 3)) * 60 + 90).astype(np.uint8)
        picture = Image.fromarray(background)
        draw = ImageDraw.Draw(picture)
        name = f"img{i:03d}.png"
        coco["images"].append({"id": i + 1, "file_name": name, "width": WIDTH, "height": HEIGHT})
        for _ in range(objects):
            w, h = rng.uniform(30, 300), rng.uniform(30, 300)
            x0, y0 = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
            label = rng.choice((1, 2, 3))
            if label == 1:
                points = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
            elif label == 2:
                points = [(x0 + w / 2, y0), (x0 + w, y0 + h), (x0, y0 + h)]
            else:
                points = [(x0 + w / 2, y0), (x0 + w, y0 + h / 2), (x0 + w / 2, y0 + h), (x0, y0 + h / 2)]
            draw.polygon(points, fill=tuple(rng.randrange(256) for _ in range(3)))
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": label,
                                        "segmentation": [[c for p in points for c in p]], "area": w * h,
                                        "bbox": [x0, y0, w, h], "iscrowd": 0})
        picture.save(folder / name)
    (folder / "annotations.json").write_text(json.dumps(coco))


def torchvision_worker(config_path, folder, steps, batch, amp, out_path, channels_last, trace=None):
    """trace: (first, last, path): a torch.profiler Chrome trace of steps first..last (from 1) to path."""
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_train import resolved, shuffled_batches, torchvision_model

    cfg = resolved(config_path)
    torch.manual_seed(cfg["train"]["seed"])
    device = torch.device("cuda")
    model = torchvision_model(cfg).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.002, momentum=0.9, weight_decay=1e-4)
    coco = json.loads((folder / "annotations.json").read_text())
    samples = []
    for info in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == info["id"]]
        masks = []
        for a in anns:
            canvas = Image.new("L", (WIDTH, HEIGHT), 0)
            flat = a["segmentation"][0]
            ImageDraw.Draw(canvas).polygon(list(zip(flat[0::2], flat[1::2])), fill=1)
            masks.append(np.asarray(canvas))
        image = torch.from_numpy(np.asarray(Image.open(folder / info["file_name"]).convert("RGB")).copy())
        samples.append({
            "image": image.permute(2, 0, 1).float().div(255).to(device),
            "target": {"boxes": torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                                a["bbox"][1] + a["bbox"][3]] for a in anns]).to(device),
                       "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64).to(device),
                       "masks": torch.from_numpy(np.stack(masks)).to(device)}})
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    batches, times = shuffled_batches(samples, batch, cfg["train"]["seed"]), []
    torch.cuda.reset_peak_memory_stats()
    profiler = None
    for step in range(1, steps + 1):
        if trace and step == trace[0]:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                          torch.profiler.ProfilerActivity.CUDA])
            profiler.__enter__()
        start = time.perf_counter()
        chosen = next(batches)
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = sum(model([s["image"] for s in chosen], [s["target"] for s in chosen]).values())
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if profiler is not None and step == trace[1]:
            profiler.__exit__(None, None, None)
            profiler.export_chrome_trace(trace[2])
            profiler = None
    Path(out_path).write_text(json.dumps({"times": times, "gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
                                          "device": torch.cuda.get_device_name()}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        a = sys.argv[2:]
        trace = (int(a[7]), int(a[8]), a[9]) if len(a) > 7 else None
        torchvision_worker(Path(a[0]), Path(a[1]), int(a[2]), int(a[3]), a[4], a[5], a[6] == "on", trace)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10, help="first steps left out of the timings")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--amp", default="bf16", choices=["off", "bf16", "fp16"])
    parser.add_argument("--images", type=int, default=32, help="synthetic training images")
    parser.add_argument("--objects", type=int, default=8, help="polygons per image")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="on/off: NHWC/NCHW convolutions on both sides (train.channels_last for ours, the model "
                             "in torch.channels_last for torchvision); auto: each side's default (ours NHWC, "
                             "torchvision NCHW)")
    parser.add_argument("--trace", metavar="DIR",
                        help="profile steps warmup+1 .. warmup+5 of both sides with the PyTorch profiler (Kineto; "
                             "mrcnn-train --profile-steps, torch.profiler for torchvision), write the Chrome traces "
                             "to DIR and print their summary (scripts/trace_summary.py)")
    args = parser.parse_args()
    traced = None
    if args.trace:
        trace_dir = Path(args.trace).resolve()
        trace_dir.mkdir(parents=True, exist_ok=True)
        traced = (args.warmup + 1, min(args.steps, args.warmup + 5))
    with tempfile.TemporaryDirectory(prefix="mrcnn-bench-gpu-train-") as tmp:
        tmp = Path(tmp)
        make_polygons_set(tmp / "data", args.images, args.objects, seed=0)
        cfg = json.loads((ROOT / "configs" / "maskrcnn_resnet50_fpn_coco.json").read_text())
        cfg.pop("description", None)
        cfg["data"]["train"] = {"format": "coco", "images": str(tmp / "data"),
                                "annotations": str(tmp / "data" / "annotations.json")}
        cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
        cfg["data"]["val_fraction"] = 0
        cfg["data"]["workers"] = min(8, os.cpu_count() or 2)  # PNG decoding of 8 images a step keeps up
        cfg["train"].update({"steps": args.steps, "epochs": 0, "batch_size": args.batch, "log_period": 1,
                             "checkpoint_period": args.steps, "eval_period": args.steps, "amp": args.amp,
                             "channels_last": args.channels_last,
                             "optimizer": {"type": "sgd", "lr": 0.002, "momentum": 0.9, "weight_decay": 1e-4},
                             "lr_schedule": {"type": "constant", "warmup_steps": 0, "milestones": []}})
        config = tmp / "bench.json"
        config.write_text(json.dumps(cfg))

        command = [str(BIN / "mrcnn-train"), "--config", str(config), "--output-dir", str(tmp / "run"),
                   "--device", "cuda"]
        if traced:
            command += ["--profile-steps", f"{traced[0]}:{traced[1]}"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"bench_gpu_train: {' '.join(command)} failed:\n{result.stderr[-4000:]}")
        records = [json.loads(l) for l in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
        records = [r for r in records if "loss" in r][args.warmup:]
        ours = {"time": statistics.median(r["time"] for r in records),
                "data": statistics.median(r["data_time"] for r in records),
                "gpu_mb": max(r.get("gpu_peak_mb", 0.0) for r in records)}

        worker = [sys.executable, __file__, "--worker", str(config), str(tmp / "data"), str(args.steps),
                  str(args.batch), args.amp, str(tmp / "reference.json"), args.channels_last]
        if traced:
            worker += [str(traced[0]), str(traced[1]), str(trace_dir / "torchvision.json")]
            ours_trace = tmp / "run" / "profile-trace.json"
            if ours_trace.exists():
                ours_trace.replace(trace_dir / "mrcnn-train.json")
        subprocess.run(worker, check=True)
        reference = json.loads((tmp / "reference.json").read_text())
        theirs = {"time": statistics.median(reference["times"][args.warmup:]), "gpu_mb": reference["gpu_mb"]}

    print(f"# training, maskrcnn_resnet50_fpn (random init, trainable_backbone_layers 3), {WIDTH}x{HEIGHT} images "
          f"with {args.objects} polygons, batch {args.batch}, amp {args.amp}, channels-last {args.channels_last}, {args.steps} steps ({args.warmup} left "
          f"out), {reference['device']}")
    print("| | s/step | images/s | peak GPU memory (MiB) |")
    print("|---|---|---|---|")
    for name, r in (("torchvision", theirs), ("mrcnn-train", ours)):
        print(f"| {name} | {r['time']:.3f} | {args.batch / r['time']:.1f} | {r['gpu_mb']:.0f} |")
    print(f"mrcnn-train's wait for data: {ours['data']:.3f} s/step (torchvision's loop reads tensors kept on the GPU)")
    print(f"speed-up: {theirs['time'] / ours['time']:.2f}x, memory ratio (ours/torchvision): "
          f"{ours['gpu_mb'] / theirs['gpu_mb']:.2f}" if ours["gpu_mb"] else
          f"speed-up: {theirs['time'] / ours['time']:.2f}x (this mrcnn-train records no GPU memory)")
    if traced:
        summary = subprocess.run([sys.executable, str(ROOT / "scripts" / "trace_summary.py"),
                                  "--steps", str(traced[1] - traced[0] + 1),
                                  str(trace_dir / "torchvision.json"), str(trace_dir / "mrcnn-train.json")],
                                 capture_output=True, text=True)
        print(summary.stdout + summary.stderr)

if __name__ == "__main__":
    main()
