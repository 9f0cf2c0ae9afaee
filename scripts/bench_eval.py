"""COCO evaluation benchmark: pycocotools against mrcnn-eval on one generated case (5000 images,
about 50,000 detections with masks), bbox and segm, in the same run. pycocotools is timed on
evaluate() + accumulate() only (its loading excluded); mrcnn-eval on the whole process (loading
the JSON included). Prints both, the ratio and each process's peak memory."""
import argparse
import json
import os
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


def run_ours(gt_path, dt_path, iou_type, threads):
    cmd = [str(ROOT / "build" / "tools" / "mrcnn-eval"), "--gt", gt_path, "--dt", dt_path, "--iou-type", iou_type,
           "--threads", str(threads), "--json", str(Path(dt_path).with_suffix(f".{iou_type}.{threads}.json")),
           "--verbose"]
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"mrcnn-eval failed:\n{stderr}")
    ap = json.loads(Path(cmd[-2]).read_text())[iou_type]["AP"]
    # The evaluation stage alone (what pycocotools' evaluate + accumulate do), from the debug log.
    marks = {line.split("debug] ")[1].split(" at ")[0]: float(line.split(" at ")[1].split(" s")[0])
             for line in stderr.splitlines() if "debug]" in line and " at " in line}
    stage = marks[f"{iou_type} evaluated"] - marks["detections read"]
    return {"seconds": seconds, "stage": stage, "AP": ap, "peak_mb": usage.ru_maxrss / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    from coco_cases import make_case, write_case

    tmp = Path(tempfile.mkdtemp(prefix="mrcnn_bench_eval_"))
    gt, dts = make_case(seed=0, images=args.images, categories=tuple(range(1, 21)), crowded_every=0, extra_max=11)
    gt_path, dt_path = write_case(tmp, gt, dts)
    print(f"case: {len(gt['images'])} images, {len(gt['annotations'])} annotations, {len(dts)} detections with "
          f"masks, {len(gt['categories'])} categories")
    for iou_type in ("bbox", "segm"):
        ref = json.loads(subprocess.run([sys.executable, __file__, "--worker", str(gt_path), str(dt_path), iou_type],
                                        capture_output=True, text=True, check=True).stdout)
        one = run_ours(str(gt_path), str(dt_path), iou_type, 1)
        many = run_ours(str(gt_path), str(dt_path), iou_type, os.cpu_count())
        assert abs(one["AP"] - ref["AP"]) < 1e-12 and abs(many["AP"] - ref["AP"]) < 1e-12, (one, many, ref)
        print(f"{iou_type}: pycocotools evaluate+accumulate {ref['seconds']:.2f} s (peak {ref['peak_mb']:.0f} MB)")
        for name, r in ((f"1 thread", one), (f"{os.cpu_count()} threads", many)):
            print(f"  mrcnn-eval {name}: whole process {r['seconds']:.2f} s ({ref['seconds'] / r['seconds']:.1f}x), "
                  f"evaluation stage {r['stage']:.2f} s ({ref['seconds'] / r['stage']:.1f}x), peak {r['peak_mb']:.0f} MB")
        print(f"  AP {ref['AP']:.6f} (both)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        pycocotools_worker(*sys.argv[2:])
    else:
        main()
