"""Where a training step's time goes, from PyTorch profiler (Kineto) Chrome traces: mrcnn-train
--profile-steps writes one, torch.profiler's export_chrome_trace another. Per step: the wall time of
the profiled window, the GPU's busy time (kernels, copies and fills, overlaps counted once) and so
its idle time, kernel launches, host-device copies, the CUDA runtime calls that wait for the GPU,
and the operators that read a GPU value back to the host; then the heaviest kernels and runtime
calls of each trace.

    python scripts/trace_summary.py --steps 5 torchvision.json mrcnn-train.json
"""
import argparse
import collections
import json
import sys
from pathlib import Path

# Runtime calls that block the host until the GPU catches up.
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")
# Operators that read a value computed on the GPU back to the host (each one waits for the GPU).
READBACK_OPS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::unique",
                "aten::_unique2", "aten::repeat_interleave", "aten::is_nonzero", "aten::equal")


def load_events(path):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"trace_summary: error: {path}: {e}")
    events = data.get("traceEvents", data) if isinstance(data, dict) else data
    return [e for e in events if isinstance(e, dict) and e.get("ph") == "X" and "dur" in e]


def busy_time(intervals):
    """Length of the union of [start, end) intervals."""
    total, end_so_far = 0.0, None
    for start, end in sorted(intervals):
        if end_so_far is None or start > end_so_far:
            total += end - start
            end_so_far = end
        elif end > end_so_far:
            total += end - end_so_far
            end_so_far = end
    return total


def summarise(path, steps):
    events = load_events(path)
    if not events:
        sys.exit(f"trace_summary: error: {path}: no complete events ('ph': 'X') in the trace")
    by_cat = collections.defaultdict(list)
    for e in events:
        by_cat[e.get("cat", "")].append(e)
    gpu = by_cat["kernel"] + by_cat["gpu_memcpy"] + by_cat["gpu_memset"]
    window = [e for e in events if e.get("cat") in ("cpu_op", "cuda_runtime", "kernel", "gpu_memcpy", "gpu_memset")]
    if not window:
        sys.exit(f"trace_summary: error: {path}: no operator, CUDA runtime or GPU events in the trace")
    start = min(float(e["ts"]) for e in window)
    end = max(float(e["ts"]) + float(e["dur"]) for e in window)
    copies = collections.Counter()
    copy_bytes = collections.Counter()
    for e in by_cat["gpu_memcpy"]:
        kind = e["name"].split()[1] if len(e["name"].split()) > 1 else e["name"]
        copies[kind] += 1
        copy_bytes[kind] += int((e.get("args") or {}).get("bytes", 0) or 0)
    runtime = collections.defaultdict(lambda: [0, 0.0])
    for e in by_cat["cuda_runtime"] + by_cat["cuda_driver"]:
        runtime[e["name"]][0] += 1
        runtime[e["name"]][1] += float(e["dur"])
    kernels = collections.defaultdict(lambda: [0, 0.0])
    for e in by_cat["kernel"]:
        kernels[e["name"]][0] += 1
        kernels[e["name"]][1] += float(e["dur"])
    readbacks = collections.Counter(e["name"] for e in by_cat["cpu_op"] if e["name"] in READBACK_OPS)
    return {
        "wall_ms": (end - start) / 1e3 / steps,
        "gpu_busy_ms": busy_time((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in gpu) / 1e3 / steps,
        "kernel_ms": sum(float(e["dur"]) for e in by_cat["kernel"]) / 1e3 / steps,
        "kernels": len(by_cat["kernel"]) / steps,
        "cpu_ops": len(by_cat["cpu_op"]) / steps,
        "copies": {k: (n / steps, copy_bytes[k] / steps / 2**20) for k, n in copies.items()},
        "sync_calls": {k: (v[0] / steps, v[1] / 1e3 / steps) for k, v in runtime.items() if k in SYNC_CALLS},
        "readbacks": {k: n / steps for k, n in readbacks.items()},
        "top_kernels": sorted(((v[1] / 1e3 / steps, v[0] / steps, k) for k, v in kernels.items()), reverse=True),
        "top_runtime": sorted(((v[1] / 1e3 / steps, v[0] / steps, k) for k, v in runtime.items()), reverse=True),
    }


def print_comparison(names, summaries):
    print("| per step | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    rows = [("wall time of the window (ms)", "wall_ms", "{:.1f}"), ("GPU busy (ms)", "gpu_busy_ms", "{:.1f}"),
            ("kernel time, summed (ms)", "kernel_ms", "{:.1f}"), ("kernel launches", "kernels", "{:.0f}"),
            ("CPU operators", "cpu_ops", "{:.0f}")]
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(s[key]) for s in summaries) + " |")
    idle = [s["wall_ms"] - s["gpu_busy_ms"] for s in summaries]
    print("| GPU idle (ms) | " + " | ".join(f"{i:.1f}" for i in idle) + " |")
    kinds = sorted({k for s in summaries for k in s["copies"]})
    for kind in kinds:
        print(f"| copies {kind} (count, MiB) | " + " | ".join(
            "{:.0f}, {:.1f}".format(*s["copies"].get(kind, (0, 0))) for s in summaries) + " |")
    calls = sorted({k for s in summaries for k in s["sync_calls"]})
    for call in calls:
        print(f"| {call} (calls, ms) | " + " | ".join(
            "{:.0f}, {:.1f}".format(*s["sync_calls"].get(call, (0, 0))) for s in summaries) + " |")
    ops = sorted({k for s in summaries for k in s["readbacks"]})
    for op in ops:
        print(f"| {op} | " + " | ".join(f"{s['readbacks'].get(op, 0):.0f}" for s in summaries) + " |")


def print_top(name, summary, count):
    print(f"\n{name}: heaviest kernels (ms/step, launches/step)")
    for ms, n, kernel in summary["top_kernels"][:count]:
        print(f"  {ms:8.2f} {n:7.1f}  {kernel[:120]}")
    print(f"{name}: heaviest CUDA runtime calls (ms/step, calls/step)")
    for ms, n, call in summary["top_runtime"][:8]:
        print(f"  {ms:8.2f} {n:7.1f}  {call}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("traces", nargs="+", help="Chrome trace JSON files")
    parser.add_argument("--steps", type=int, default=1, help="steps each trace covers (figures are per step)")
    parser.add_argument("--top", type=int, default=15, help="kernels listed per trace")
    args = parser.parse_args()
    if args.steps < 1:
        sys.exit("trace_summary: error: --steps must be >= 1")
    names = [Path(t).stem for t in args.traces]
    summaries = [summarise(t, args.steps) for t in args.traces]
    print_comparison(names, summaries)
    for name, summary in zip(names, summaries):
        print_top(name, summary, args.top)


if __name__ == "__main__":
    main()
