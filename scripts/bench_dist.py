"""Data-parallel scaling of mrcnn-train: the same global batch, data and steps trained by one
process with all the cores, then by N processes (Gloo on CPU, NCCL on CUDA) sharing them. Prints
each run's time per step (median of the steps after warm-up), the communication time per step
(collectives, waits for the slowest process included) and the speed-up against one process.

On CPU the processes split the machine's cores (OMP_NUM_THREADS = cores / N), so the figure says
what data parallelism costs or gains on one machine; across machines or GPUs each process brings
its own compute."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("MRCNN_BIN_DIR", ROOT / "build" / "tools"))


def run(config, output, processes, threads, device):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    command = [str(BIN / "mrcnn-train"), "--config", str(config), "--output-dir", str(output), "--device", device]
    if processes > 1:
        command += ["--nproc", str(processes)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench_dist: {' '.join(command)} failed:\n{result.stderr}")
    records = [json.loads(l) for l in (output / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "loss" in r]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="processes of the data-parallel run")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the timings")
    parser.add_argument("--batch", type=int, default=4, help="global batch")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads in all")
    parser.add_argument("--preset", default="shapes_tiny_cpu")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (then one GPU per process, NCCL)")
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mrcnn-bench-dist-") as tmp:
        tmp = Path(tmp)
        subprocess.run([str(BIN / "mrcnn-train"), "--make-shapes", str(tmp / "shapes"), "--shapes-train", "64",
                        "--shapes-val", "4", "--shapes-size", str(args.image_size)], check=True, capture_output=True)
        cfg = json.loads((ROOT / "configs" / f"{args.preset}.json").read_text())
        cfg.pop("description", None)
        cfg["data"]["train"] = {"format": "coco", "images": str(tmp / "shapes" / "train"),
                                "annotations": str(tmp / "shapes" / "train.json")}
        cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
        cfg["data"]["val_fraction"] = 0
        cfg["data"]["workers"] = 1
        cfg["train"].update({"steps": args.steps, "epochs": 0, "batch_size": args.batch, "log_period": 1,
                             "checkpoint_period": args.steps, "eval_period": args.steps,
                             "lr_schedule": {"type": "constant", "warmup_steps": 0, "milestones": []}})
        config = tmp / "bench.json"
        config.write_text(json.dumps(cfg))

        rows = []
        for processes in (1, args.processes):
            threads = max(1, args.threads // processes)
            steps = run(config, tmp / f"run{processes}", processes, threads, args.device)[args.warmup:]
            rows.append({"processes": processes, "threads": threads,
                         "time": statistics.median(s["time"] for s in steps),
                         "comm": statistics.median(s.get("comm_time", 0.0) for s in steps),
                         "data": statistics.median(s["data_time"] for s in steps)})
    base = rows[0]["time"]
    print(f"# mrcnn-train data-parallel scaling: {args.preset}, {args.image_size} px shapes, global batch "
          f"{args.batch}, {args.steps} steps ({args.warmup} left out), device {args.device}, {args.threads} threads")
    print("| processes | threads each | s/step | communication s/step | data s/step | images/s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['threads']} | {r['time']:.3f} | {r['comm']:.3f} | {r['data']:.3f} | "
              f"{args.batch / r['time']:.2f} | {base / r['time']:.2f}x |")


if __name__ == "__main__":
    main()
