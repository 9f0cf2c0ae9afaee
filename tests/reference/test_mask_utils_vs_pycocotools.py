"""Every mask utility against pycocotools' own outputs: polygon rasterisation, merge (union and
intersection), area, bbox, and IoU of masks and boxes with crowd semantics."""
import json
import subprocess

import numpy as np
import pytest

mask_api = pytest.importorskip("pycocotools.mask")

from mrcnn_testing import TEST_BIN_DIR  # noqa: E402


def as_json(rle):
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


def random_mask(rng, h, w):
    yy, xx = np.mgrid[:h, :w]
    cy, cx, ry, rx = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1, h / 2), rng.uniform(1, w / 2)
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    rng = np.random.default_rng(21)
    tmp = tmp_path_factory.mktemp("masks")
    polygons = []
    for i in range(60):
        h, w = int(rng.integers(5, 120)), int(rng.integers(5, 120))
        n = int(rng.integers(3, 12))
        # points inside, on and just outside the image, with fractional coordinates
        xy = np.stack([rng.uniform(-4, w + 4, n), rng.uniform(-4, h + 4, n)], 1).reshape(-1)
        if i % 10 == 0:
            xy = np.round(xy)  # integer vertices hit the rounding edges
        polygons.append({"h": h, "w": w, "xy": [float(v) for v in xy]})
    masks, merges, ious = [], [], []
    for i in range(30):
        h, w = int(rng.integers(10, 80)), int(rng.integers(10, 80))
        group = [mask_api.encode(np.asfortranarray(random_mask(rng, h, w))) for _ in range(int(rng.integers(1, 5)))]
        masks.extend(group)
        merges.append({"masks": [as_json(r) for r in group], "intersect": bool(i % 2)})
        dts = [mask_api.encode(np.asfortranarray(random_mask(rng, h, w))) for _ in range(int(rng.integers(0, 6)))]
        crowd = [int(v) for v in rng.integers(0, 2, len(group))]
        ious.append({"kind": "rle", "dt": [as_json(r) for r in dts], "gt": [as_json(r) for r in group], "crowd": crowd,
                     "_dt": dts, "_gt": group})
        boxes_d = [[float(v) for v in rng.uniform(0, 50, 4)] for _ in range(int(rng.integers(1, 6)))]
        boxes_g = [[float(v) for v in rng.uniform(0, 50, 4)] for _ in range(int(rng.integers(1, 6)))]
        crowd_b = [int(v) for v in rng.integers(0, 2, len(boxes_g))]
        ious.append({"kind": "box", "dt": boxes_d, "gt": boxes_g, "crowd": crowd_b})
    request = {"polygons": polygons, "merges": merges, "masks": [as_json(r) for r in masks],
               "ious": [{k: v for k, v in q.items() if not k.startswith("_")} for q in ious]}
    (tmp / "request.json").write_text(json.dumps(request))
    out = subprocess.run([str(TEST_BIN_DIR / "rle_tool"), "--batch", tmp / "request.json"], capture_output=True,
                         text=True, check=True)
    return polygons, merges, masks, ious, json.loads(out.stdout)


def test_polygon_rasterisation(exchange):
    polygons, _, _, _, got = exchange
    for p, ours in zip(polygons, got["polygons"]):
        ref = mask_api.frPyObjects([p["xy"]], p["h"], p["w"])[0]
        assert ours["counts"] == ref["counts"].decode(), p


def test_merge(exchange):
    _, merges, _, _, got = exchange
    for m, ours in zip(merges, got["merges"]):
        rles = [{"size": r["size"], "counts": r["counts"].encode()} for r in m["masks"]]
        ref = mask_api.merge(rles, intersect=int(m["intersect"]))
        assert ours["counts"] == ref["counts"].decode()


def test_area_and_bbox(exchange):
    _, _, masks, _, got = exchange
    assert got["areas"] == [int(mask_api.area(r)) for r in masks]
    assert np.array_equal(np.array(got["bboxes"]), np.array([mask_api.toBbox(r) for r in masks]))


def test_iou_with_crowd(exchange):
    _, _, _, ious, got = exchange
    for q, ours in zip(ious, got["ious"]):
        if q["kind"] == "box":
            ref = mask_api.iou(q["dt"], q["gt"], q["crowd"])
        else:
            ref = mask_api.iou(q["_dt"], q["_gt"], q["crowd"])
        if len(q["dt"]) == 0:
            assert ours == []
            continue
        assert np.array_equal(np.array(ours).reshape(len(q["dt"]), len(q["gt"])), np.asarray(ref)), q["kind"]
