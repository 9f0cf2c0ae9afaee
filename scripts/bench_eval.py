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
           "--threads", str(threads), "--json", str(Path(dt_path).with_suffix(f".{iou_type}.{threads}.json"))]
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"mrcnn-eval failed:\n{stderr}")
    ap = json.loads(Path(cmd[-1]).read_text())[iou_type]["AP"]
    return {"seconds": seconds, "AP": ap, "peak_mb": usage.ru_maxrss / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    from coco_cases import make_case, write_case

    tmp = Path(tempfile.mkdtemp(prefix="mrcnn_bench_eval_"))
    gt, dts = make_case(seed=0, images=args.images, categories=tuple(range(1, 21)), crowded_every=0, extra_max=8)
    gt_path, dt_path = write_case(tmp, gt, dts)
    print(f"case: {len(gt['images'])} images, {len(gt['annotations'])} annotations, {len(dts)} detections with "
          f"masks, {len(gt['categories'])} categories")
    for iou_type in ("bbox", "segm"):
        ref = json.loads(subprocess.run([sys.executable, __file__, "--worker", str(gt_path), str(dt_path), iou_type],
                                        capture_output=True, text=True, check=True).stdout)
        one = run_ours(str(gt_path), str(dt_path), iou_type, 1)
        many = run_ours(str(gt_path), str(dt_path), iou_type, os.cpu_count())
        assert abs(one["AP"] - ref["AP"]) < 1e-12 and abs(many["AP"] - ref["AP"]) < 1e-12, (one, many, ref)
        print(f"{iou_type}: pycocotools {ref['seconds']:.2f} s (peak {ref['peak_mb']:.0f} MB); "
              f"mrcnn-eval 1 thread {one['seconds']:.2f} s ({ref['seconds'] / one['seconds']:.1f}x, peak "
              f"{one['peak_mb']:.0f} MB), {os.cpu_count()} threads {many['seconds']:.2f} s "
              f"({ref['seconds'] / many['seconds']:.1f}x); AP {ref['AP']:.4f} both")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        pycocotools_worker(*sys.argv[2:])
    else:
        main()
