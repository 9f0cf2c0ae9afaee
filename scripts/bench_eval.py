"""COCO evaluation benchmark: pycocotools against mrcnn-eval on one generated case (5000 images,
about 50,000 detections with masks; --images for another size), bbox and segm, in the same run.
Both run as whole processes, timed from start to exit: wall time and CPU time (user + sys of the
process); pycocotools' process starts python, reads the JSON (COCO(), loadRes), evaluates,
accumulates and summarizes. Also shown, as before: pycocotools' evaluate() + accumulate() alone
and mrcnn-eval's evaluation stage (from its --verbose log). Each figure is the median of
--repeats runs. Prints the ratios and each process's peak memory."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def pycocotools_worker(gt_path, dt_path, iou_type):
    import contextlib
    import io
    import resource

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        ev = COCOeval(gt, dt, iou_type)
        start = time.perf_counter()
        ev.evaluate()
        ev.accumulate()
        seconds = time.perf_counter() - start
        ev.summarize()
    print(json.dumps({"seconds": seconds, "AP": ev.stats[0],
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


# A process started from this one reports this one's memory as its peak when that is larger
# (Linux keeps the larger of the two across fork and exec), and this one holds the generated case:
# both sides' peaks are measured by GNU time, whose child starts its count afresh.
GNU_TIME = "/usr/bin/time"


def timed(cmd, stdout, own_peak=False):
    """Runs cmd: wall seconds, CPU seconds (user + sys), peak MB, stdout, stderr. own_peak: cmd's
    peak alone (through GNU time, whose start adds about a millisecond to both times)."""
    peak_file = None
    if own_peak and os.path.exists(GNU_TIME):
        peak_file = tempfile.NamedTemporaryFile(suffix=".peak", delete=False).name
        cmd = [GNU_TIME, "-f", "%M", "-o", peak_file] + cmd
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    out = process.stdout.read() if stdout == subprocess.PIPE else ""
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{cmd[0]} failed:\n{err}")
    peak = usage.ru_maxrss / 1024
    if peak_file:
        peak = int(Path(peak_file).read_text().split()[-1]) / 1024
        os.unlink(peak_file)
    return seconds, usage.ru_utime + usage.ru_stime, peak, out, err


def run_pycocotools(gt_path, dt_path, iou_type):
    seconds, cpu, peak, out, _ = timed([sys.executable, __file__, "--worker", gt_path, dt_path, iou_type],
                                       subprocess.PIPE, own_peak=True)
    ref = json.loads(out)
    return {"seconds": seconds, "cpu": cpu, "stage": ref["seconds"], "AP": ref["AP"], "peak_mb": peak}


def run_ours(gt_path, dt_path, iou_type, threads):
    cmd = [str(ROOT / "build" / "tools" / "mrcnn-eval"), "--gt", gt_path, "--dt", dt_path, "--iou-type", iou_type,
           "--threads", str(threads), "--json", str(Path(dt_path).with_suffix(f".{iou_type}.{threads}.json")),
           "--verbose"]
    seconds, cpu, peak, _, stderr = timed(cmd, subprocess.DEVNULL, own_peak=True)
    ap = json.loads(Path(cmd[-2]).read_text())[iou_type]["AP"]
    # The evaluation stage alone (what pycocotools' evaluate + accumulate do), from the debug log.
    marks = {line.split("debug] ")[1].split(" at ")[0]: float(line.split(" at ")[1].split(" s")[0])
             for line in stderr.splitlines() if "debug]" in line and " at " in line}
    stage = marks[f"{iou_type} evaluated"] - marks["detections read"]
    return {"seconds": seconds, "cpu": cpu, "stage": stage, "AP": ap, "peak_mb": peak}


def median_run(run, repeats):
    """run() repeated: the median of each figure (the AP of the first run)."""
    runs = [run() for _ in range(repeats)]
    return {key: statistics.median(r[key] for r in runs) if key != "AP" else runs[0]["AP"] for key in runs[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5000, help="images in the generated case (default 5000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each process; figures are medians")
    args = parser.parse_args()
    from coco_cases import make_case, write_case

    tmp = Path(tempfile.mkdtemp(prefix="mrcnn_bench_eval_"))
    gt, dts = make_case(seed=0, images=args.images, categories=tuple(range(1, 21)), crowded_every=0, extra_max=11)
    gt_path, dt_path = write_case(tmp, gt, dts)
    busy = subprocess.run(["pgrep", "-c", "cc1plus"], capture_output=True, text=True).stdout.strip() or "0"
    print(f"case: {len(gt['images'])} images, {len(gt['annotations'])} annotations, {len(dts)} detections with "
          f"masks, {len(gt['categories'])} categories; medians of {args.repeats} runs; compilers running: {busy}")
    for iou_type in ("bbox", "segm"):
        ref = median_run(lambda: run_pycocotools(str(gt_path), str(dt_path), iou_type), args.repeats)
        one = median_run(lambda: run_ours(str(gt_path), str(dt_path), iou_type, 1), args.repeats)
        many = median_run(lambda: run_ours(str(gt_path), str(dt_path), iou_type, os.cpu_count()), args.repeats)
        assert abs(one["AP"] - ref["AP"]) < 1e-12 and abs(many["AP"] - ref["AP"]) < 1e-12, (one, many, ref)
        print(f"{iou_type}: pycocotools whole process {ref['seconds']:.2f} s wall, {ref['cpu']:.2f} s CPU; "
              f"evaluate+accumulate {ref['stage']:.2f} s (peak {ref['peak_mb']:.0f} MB)")
        for name, r in (("1 thread", one), (f"{os.cpu_count()} threads", many)):
            print(f"  mrcnn-eval {name}: whole process {r['seconds']:.3f} s ({ref['seconds'] / r['seconds']:.1f}x), "
                  f"CPU {r['cpu']:.3f} s ({ref['cpu'] / r['cpu']:.1f}x), evaluation stage {r['stage']:.3f} s "
                  f"({ref['stage'] / r['stage']:.1f}x of evaluate+accumulate), peak {r['peak_mb']:.0f} MB")
        print(f"  AP {ref['AP']:.6f} (both)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        pycocotools_worker(*sys.argv[2:])
    else:
        main()
