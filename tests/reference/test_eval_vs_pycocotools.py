"""mrcnn-eval against pycocotools on randomised cases: all 12 numbers of bbox and segm must
agree within 1e-12 (-1 where pycocotools gives -1), and so must the per-class APs."""
import json
import subprocess

import numpy as np
import pytest

pytest.importorskip("pycocotools")

from coco_cases import make_case, pycocotools_stats, write_case  # noqa: E402
from mrcnn_testing import BIN_DIR  # noqa: E402

NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def ours(gt_path, dt_path, iou_type, tmp_path, threads="2"):
    out = tmp_path / "metrics.json"
    result = subprocess.run([str(BIN_DIR / "mrcnn-eval"), "--gt", gt_path, "--dt", dt_path, "--iou-type", iou_type,
                             "--json", out, "--threads", threads], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), result.stdout


CASES = [
    dict(seed=1),
    dict(seed=2, images=20),
    dict(seed=3, max_scale=12),     # mostly small objects
    dict(seed=4, max_scale=70),     # medium and large
    dict(seed=5, results="segm"),   # results without boxes: areas and boxes from the masks
    dict(seed=6, results="bbox"),   # box-only results
]


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_stats_match_pycocotools(tmp_path, case):
    gt, dts = make_case(**case)
    gt_path, dt_path = write_case(tmp_path, gt, dts)
    iou_types = ["bbox"] if case.get("results") == "bbox" else ["bbox", "segm"]
    if case.get("results") == "segm":
        iou_types = ["segm"]
    for iou_type in iou_types:
        expected, ev = pycocotools_stats(gt_path, dt_path, iou_type)
        got, _ = ours(gt_path, dt_path, iou_type, tmp_path)
        values = [got[iou_type][n] for n in NAMES]
        assert np.allclose(values, expected, rtol=0, atol=1e-12), (iou_type, values, expected)
        assert any(v > 0 for v in expected), "degenerate case: nothing matched"


def test_per_class_ap_and_layout(tmp_path):
    gt, dts = make_case(seed=9)
    gt_path, dt_path = write_case(tmp_path, gt, dts)
    expected, ev = pycocotools_stats(gt_path, dt_path, "segm")
    _, stdout = ours(gt_path, dt_path, "segm", tmp_path)
    result = subprocess.run([str(BIN_DIR / "mrcnn-eval"), "--gt", gt_path, "--dt", dt_path, "--iou-type", "segm",
                             "--per-class"], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    # The 12 summary lines in pycocotools' layout.
    assert lines[1] == f" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = {expected[0]:0.3f}"
    assert lines[12] == f" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = {expected[11]:0.3f}"
    precision = ev.eval["precision"]
    for k, cat in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        ap = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
        row = [l for l in lines if l.strip().endswith(f"(id {cat})") or f"(id {cat})  [" in l]
        assert row, cat
        assert row[0].strip().startswith(f"{ap:.3f}".replace("-1.000", "-1.000"))


def test_thread_count_does_not_change_results(tmp_path):
    gt, dts = make_case(seed=11)
    gt_path, dt_path = write_case(tmp_path, gt, dts)
    one, _ = ours(gt_path, dt_path, "both", tmp_path, threads="1")
    many, _ = ours(gt_path, dt_path, "both", tmp_path, threads="4")
    assert one == many


def crowded_case(seed, images=3, objects=150):
    """Images with more objects of one category than pycocotools' default 100 detections (its cut is per
    image and category): small boxes, detections jittered from most of them, and false positives."""
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "fruit"}]}
    dts = []
    for i in range(images):
        gt["images"].append({"id": i + 1, "height": 400, "width": 400, "file_name": f"{i}.jpg"})
        for _ in range(objects):
            x, y = rng.uniform(0, 380, 2)
            w, h = rng.uniform(5, 20, 2)
            cat = 1
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": cat,
                                      "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            if rng.random() < 0.9:
                jitter = rng.normal(0, 1.5, 4)
                dts.append({"image_id": i + 1, "category_id": cat, "score": float(rng.uniform(0.05, 1)),
                            "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1), max(h + jitter[3], 1)]})
        for _ in range(40):
            x, y = rng.uniform(0, 380, 2)
            dts.append({"image_id": i + 1, "category_id": 1, "score": float(rng.uniform(0, 1)),
                        "bbox": [x, y, 12.0, 12.0]})
    return gt, [{k: (list(map(float, v)) if k == "bbox" else v) for k, v in d.items()} for d in dts]


def test_max_dets_beyond_100_matches_pycocotools(tmp_path):
    """--max-dets 300 is pycocotools with maxDets [1, 10, 300]: its 11 lines that use maxDets[2]
    (and AR1, AR10), and AP from its precision array (its summarize prints -1 for AP unless the last
    maxDets is 100). The default 100 undercounts these images: the control."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt, dts = crowded_case(seed=21)
    gt_path, dt_path = write_case(tmp_path, gt, dts)
    coco = COCO(str(gt_path))
    ev = COCOeval(coco, coco.loadRes(str(dt_path)), "bbox")
    ev.params.maxDets = [1, 10, 300]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, 2]
    expected = [float(np.mean(precision[precision > -1]))] + [float(v) for v in ev.stats[1:]]
    out = tmp_path / "m300.json"
    result = subprocess.run([str(BIN_DIR / "mrcnn-eval"), "--gt", gt_path, "--dt", dt_path, "--iou-type", "bbox",
                             "--max-dets", "300", "--json", out], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "maxDets=300 ] =" in result.stdout
    got = json.loads(out.read_text())["bbox"]
    assert np.allclose([got[n] for n in NAMES], expected, rtol=0, atol=1e-12), ([got[n] for n in NAMES], expected)
    default, _ = ours(gt_path, dt_path, "bbox", tmp_path)
    assert default["bbox"]["AR100"] < got["AR100"] - 0.1, (default["bbox"], got)
