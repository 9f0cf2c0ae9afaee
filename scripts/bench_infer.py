"""Inference benchmark: mrcnn-infer against torchvision's maskrcnn_resnet50_fpn, same random
weights (heads spread so that every image yields 100 detections with masks, as a busy real
scene does), same 800x1333 image, same torch build, thread count, device and batch size. Prints
median seconds per image (model time: decode and file writing left out on both sides; binary
masks on the host, as users keep them), the ratio and each process's peak memory (max RSS; on
CUDA torchvision's peak GPU memory too)."""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("MRCNN_BIN_DIR", ROOT / "build" / "tools"))
sys.path.insert(0, str(ROOT / "tests"))


def torchvision_worker(weights, image, runs, threads, device, batch, precision):
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.set_num_threads(threads)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    model.load_state_dict(torch.load(weights))
    model.eval().to(device)
    tensor = torch.from_numpy(np.asarray(Image.open(image).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    images = [tensor.to(device)] * batch
    times, detections = [], 0
    cuda = device.startswith("cuda")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = lambda: torch.autocast(device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None)
    with torch.inference_mode():
        with autocast():
            model(images)  # warm-up, left out of the peak memory as on our side
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(runs):
            start = time.perf_counter()
            with autocast():
                outs = model(images)
            masks = [(out["masks"] > 0.5).cpu() for out in outs]  # the binary masks users keep
            if cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / batch)
            detections = len(outs[0]["boxes"])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0
    print(json.dumps({"seconds": statistics.median(times), "detections": detections, "peak_mb": peak_kb / 1024,
                      "gpu_mb": gpu_mb}))


def run_mrcnn(bin_dir, args, tmp, images):
    """mrcnn-infer from bin_dir over the images: median s/img after the warm-up, peak RSS, stage times."""
    ours_cmd = [str(bin_dir / "mrcnn-infer"), "-c", str(tmp / "config.json"), "-w",
                str(tmp / "weights.pth"), "-i", str(images), "-o", str(tmp / "dt.json"), "--device", args.device,
                "--batch-size", str(args.batch), "--precision", args.ours_precision or args.precision] + [
                "--threads", str(args.threads), "--score-threshold", "0.05", "--verbose"]
    process = subprocess.Popen(ours_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
    if status != 0:
        sys.exit(f"{ours_cmd[0]} failed:\n{stderr}")
    times = [float(line.split(" took ")[1].split(" s")[0]) / args.batch for line in stderr.splitlines()
             if "image took " in line or "images took " in line]
    gpu_peaks = [float(line.split("peak GPU memory ")[1].split(" MiB")[0]) for line in stderr.splitlines()
                 if "peak GPU memory " in line]
    stages = {}
    for line in stderr.splitlines():
        match = re.search(r"  ([a-z +]+): ([0-9.]+) ms$", line)
        if match:
            stages.setdefault(match.group(1), []).append(float(match.group(2)))
    ours = {"seconds": statistics.median(times[1:]), "peak_mb": usage.ru_maxrss / 1024,
            "gpu_mb": gpu_peaks[-1] if gpu_peaks else 0,
            "detections": len(json.loads((tmp / "dt.json").read_text())) // (args.batch * (args.runs + 1))}
    return ours, stages


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cpu, or cuda")
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass, both sides")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                        help="autocast precision, both sides (bf16/fp16 on CUDA)")
    parser.add_argument("--ours-precision", choices=["fp32", "bf16", "fp16", "auto"],
                        help="mrcnn-infer's precision when it differs from torchvision's (e.g. auto against "
                        "torchvision fp32)")
    parser.add_argument("--baseline-bin", help="also run mrcnn-infer from this folder (another build) in the same "
                        "run and print this build's speed and memory against it")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        torchvision_worker(args.worker[0], args.worker[1], args.runs, args.threads, args.device, args.batch,
                           args.precision)
        return

    import numpy as np
    import torch
    from PIL import Image
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    from mrcnn_testing import PENNFUDAN, spread_head_outputs

    tmp = Path(tempfile.mkdtemp(prefix="mrcnn_bench_"))
    torch.manual_seed(0)
    model = spread_head_outputs(maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91))
    torch.save(model.state_dict(), tmp / "weights.pth")
    photos = sorted((PENNFUDAN / "PNGImages").glob("*.png"))
    if photos:
        picture = Image.open(photos[0]).convert("RGB").resize((1333, 800), Image.BILINEAR)
    else:
        picture = Image.fromarray((np.random.default_rng(0).random((800, 1333, 3)) * 255).astype(np.uint8))
    images = tmp / "images"
    images.mkdir()
    for i in range(args.batch * (args.runs + 1)):  # the first batch is the warm-up
        picture.save(images / f"img{i:02d}.png")
    (tmp / "config.json").write_text(json.dumps({"model": {"num_classes": 91}}))

    worker = subprocess.run(
        [sys.executable, __file__, "--runs", str(args.runs), "--threads", str(args.threads),
         "--device", args.device, "--batch", str(args.batch), "--precision", args.precision, "--worker",
         str(tmp / "weights.pth"), str(images / "img00.png")],
        capture_output=True, text=True)
    if worker.returncode != 0:
        sys.exit(f"bench_infer: the torchvision reference failed:\n{worker.stderr[-4000:]}")
    reference = json.loads(worker.stdout)

    ours, stages = run_mrcnn(BIN, args, tmp, images)
    baseline = run_mrcnn(Path(args.baseline_bin), args, tmp, images)[0] if args.baseline_bin else None
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    ours_precision = f" (mrcnn: {args.ours_precision})" if args.ours_precision else ""
    print(f"device: {device_name}, {args.precision}{ours_precision}, batch {args.batch}, threads: {args.threads}, runs: {args.runs}, image 800x1333, "
          f"torch {torch.__version__}")
    print(f"torchvision: {reference['seconds']:.3f} s/img, {reference['detections']} detections, "
          f"peak {reference['peak_mb']:.0f} MB" + (f", GPU peak {reference['gpu_mb']:.0f} MB" if reference["gpu_mb"] else ""))
    print(f"mrcnn:       {ours['seconds']:.3f} s/img, {ours['detections']} detections, peak {ours['peak_mb']:.0f} MB"
          + (f", GPU peak {ours['gpu_mb']:.0f} MB" if ours["gpu_mb"] else ""))
    if baseline:
        print(f"baseline:    {baseline['seconds']:.3f} s/img, {baseline['detections']} detections, peak "
              f"{baseline['peak_mb']:.0f} MB ({args.baseline_bin}); this build against it: "
              f"{baseline['seconds'] / ours['seconds']:.2f}x speed, {ours['peak_mb'] / baseline['peak_mb']:.2f}x memory; "
              f"baseline against torchvision: {reference['seconds'] / baseline['seconds']:.2f}x")
    if stages:
        print("mrcnn stages (median ms per batch): " +
              ", ".join(f"{name} {statistics.median(v[1:] or v):.1f}" for name, v in stages.items()))
    print(f"speed-up: {reference['seconds'] / ours['seconds']:.2f}x, memory ratio (ours/torchvision): "
          f"{ours['peak_mb'] / reference['peak_mb']:.2f}" +
          (f", GPU memory ratio {ours['gpu_mb'] / reference['gpu_mb']:.2f}" if ours["gpu_mb"] and reference["gpu_mb"] else ""))


if __name__ == "__main__":
    main()
