"""Data-parallel scaling of mrcnn-train: the same global batch, data and steps trained by one
process with all the cores, then by N processes (Gloo on CPU, NCCL on CUDA) sharing them. Prints
each run's time per step (median of the steps after warm-up), the communication time per step
(collectives, waits for the slowest process included) and the speed-up against one process; then
the same for the reference, torchvision's Mask R-CNN of the same config under PyTorch's
DistributedDataParallel (scripts/bench_train.py builds it), measured in the same run.

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


def run(config, output, processes, threads, device, group_of_one=False):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    command = [str(BIN / "mrcnn-train"), "--config", str(config), "--output-dir", str(output), "--device", device]
    if processes > 1:
        command += ["--nproc", str(processes)]
    elif group_of_one:  # torchrun --nproc-per-node 1: a process group of one (NCCL on a single GPU)
        env.update({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(20000 + os.getpid() % 20000)})
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench_dist: {' '.join(command)} failed:\n{result.stderr}")
    records = [json.loads(l) for l in (output / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "loss" in r]


def ddp_worker(rank, world, port, config_path, shapes, threads, steps, batch, device, out_path):
    """One process of the reference: torchvision's model under DDP, this rank's share of each global batch."""
    import time

    import torch
    import torch.distributed as dist

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_train import load_coco_samples, resolved, shuffled_batches, torchvision_model

    torch.set_num_threads(threads)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    cuda = device == "cuda"
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    target = torch.device("cuda", rank) if cuda else torch.device("cpu")
    cfg = resolved(config_path)
    torch.manual_seed(cfg["train"]["seed"])
    model = torchvision_model(cfg).to(target)
    model.train()
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.002, momentum=0.9, weight_decay=1e-4)
    _, samples = load_coco_samples(shapes / "train.json", shapes / "train")
    batches, times = shuffled_batches(samples, batch, cfg["train"]["seed"]), []
    for _ in range(steps):
        start = time.perf_counter()
        chosen = next(batches)
        images, targets = [], []
        for s in chosen[batch * rank // world:batch * (rank + 1) // world]:
            images.append(torch.from_numpy(s["decode"](s["path"]).copy()).permute(2, 0, 1).float().div(255).to(target))
            targets.append({"boxes": torch.tensor(s["boxes"], dtype=torch.float32).reshape(-1, 4).to(target),
                            "labels": torch.tensor(s["labels"], dtype=torch.int64).to(target),
                            "masks": torch.from_numpy(s["masks"]).to(target)})
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if rank == 0:
        Path(out_path).write_text(json.dumps(times))
    if world > 1:
        dist.destroy_process_group()


def run_reference(config, shapes, processes, threads, steps, batch, device, out):
    port = 20000 + os.getpid() % 20000
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    procs = [subprocess.Popen([sys.executable, __file__, "--ddp-worker", str(rank), str(processes), str(port),
                               str(config), str(shapes), str(threads), str(steps), str(batch), device, str(out)],
                              env=env, stderr=subprocess.PIPE, text=True) for rank in range(processes)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"bench_dist: the DDP reference failed:\n{err}")
    return json.loads(Path(out).read_text())


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--ddp-worker":
        a = sys.argv[2:]
        ddp_worker(int(a[0]), int(a[1]), int(a[2]), Path(a[3]), Path(a[4]), int(a[5]), int(a[6]), int(a[7]), a[8],
                   a[9])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2,
                        help="processes of the data-parallel run; 1: one process alone, then in a process group "
                             "of one (a single GPU: what NCCL's collectives cost)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the timings")
    parser.add_argument("--batch", type=int, default=4, help="global batch")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads in all")
    parser.add_argument("--preset", default="shapes_tiny_cpu")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (then one GPU per process, NCCL)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--no-reference", action="store_true", help="skip the torchvision + DDP runs")
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
                             "optimizer": {"type": "sgd", "lr": 0.002, "momentum": 0.9, "weight_decay": 1e-4},
                             "lr_schedule": {"type": "constant", "warmup_steps": 0, "milestones": []}})
        config = tmp / "bench.json"
        config.write_text(json.dumps(cfg))

        rows = []
        runs = [(1, False), (args.processes, False)] if args.processes > 1 else [(1, False), (1, True)]
        for processes, group_of_one in runs:
            threads = max(1, args.threads // processes)
            steps = run(config, tmp / f"run{processes}{group_of_one}", processes, threads, args.device,
                        group_of_one)[args.warmup:]
            rows.append({"processes": processes, "threads": threads, "group": group_of_one or processes > 1,
                         "time": statistics.median(s["time"] for s in steps),
                         "comm": statistics.median(s.get("comm_time", 0.0) for s in steps),
                         "data": statistics.median(s["data_time"] for s in steps)})
        reference = []
        if not args.no_reference and args.processes > 1:
            for processes in (1, args.processes):
                threads = max(1, args.threads // processes)
                times = run_reference(config, tmp / "shapes", processes, threads, args.steps, args.batch, args.device,
                                      tmp / f"ddp{processes}.json")[args.warmup:]
                reference.append({"processes": processes, "threads": threads, "time": statistics.median(times)})
    base = rows[0]["time"]
    print(f"# mrcnn-train data-parallel scaling: {args.preset}, {args.image_size} px shapes, global batch "
          f"{args.batch}, {args.steps} steps ({args.warmup} left out), device {args.device}, {args.threads} threads")
    print("| processes | threads each | s/step | communication s/step | data s/step | images/s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        name = f"{r['processes']}" + (" (process group)" if r["group"] else "")
        print(f"| {name} | {r['threads']} | {r['time']:.3f} | {r['comm']:.3f} | {r['data']:.3f} | "
              f"{args.batch / r['time']:.2f} | {base / r['time']:.2f}x |")
    if reference:
        print()
        print("| reference: torchvision + DDP | threads each | s/step | images/s | speed-up | mrcnn s/step / DDP s/step |")
        print("|---|---|---|---|---|---|")
        for r, ours in zip(reference, rows):
            print(f"| {r['processes']} processes | {r['threads']} | {r['time']:.3f} | {args.batch / r['time']:.2f} | "
                  f"{reference[0]['time'] / r['time']:.2f}x | {ours['time'] / r['time']:.2f} |")


if __name__ == "__main__":
    main()
