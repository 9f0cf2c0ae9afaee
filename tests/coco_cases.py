"""Randomised COCO evaluation cases (ground truth + detections) for the exactness tests and the
evaluation benchmark: polygons, both RLE kinds, crowd regions, images without annotations,
categories missing from some images, more than 100 detections on some images, tied scores,
small/medium/large objects."""
import json

import numpy as np
from pycocotools import mask as mask_api


def _ellipse(h, w, rng, scale):
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(2, scale), rng.uniform(2, scale)
    yy, xx = np.mgrid[:h, :w]
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)


def _polygon(h, w, rng, scale):
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = rng.uniform(2, scale, n)
    xs = np.clip(cx + radius * np.cos(angles), -3, w + 3)
    ys = np.clip(cy + radius * np.sin(angles), -3, h + 3)
    return [float(v) for xy in zip(xs, ys) for v in xy]


def _rle_dict(mask):
    rle = mask_api.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode()
    return rle


def _uncompressed(mask):
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for px in flat:
        if px != value:
            counts.append(run)
            run, value = 0, px
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def make_case(seed, images=12, categories=(1, 3, 7, 12, 40), results="both", max_scale=None, crowded_every=4,
              extra_max=6):
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": c, "name": f"class{c}"} for c in categories]}
    dts = []
    ann_id = 1
    used_categories = categories[:-1]  # the last category never appears in the ground truth
    for i in range(images):
        image_id = int(1000 + 7 * i)
        h, w = int(rng.integers(40, 160)), int(rng.integers(40, 160))
        gt["images"].append({"id": image_id, "height": h, "width": w, "file_name": f"{image_id}.jpg"})
        if i % 5 == 4:  # no annotations
            n_objects = 0
        else:
            n_objects = int(rng.integers(1, 12))
        scale = max_scale or max(h, w) / 2
        for _ in range(n_objects):
            cat = int(rng.choice(used_categories))
            kind = rng.choice(["poly", "rle", "ucrle", "crowd"], p=[0.5, 0.2, 0.15, 0.15])
            if kind == "poly":
                segm = [_polygon(h, w, rng, scale)]
                if rng.random() < 0.2:
                    segm.append(_polygon(h, w, rng, scale))
                rle = mask_api.merge(mask_api.frPyObjects(segm, h, w))
            else:
                mask = _ellipse(h, w, rng, scale)
                if mask.sum() == 0:
                    continue
                segm = _rle_dict(mask) if kind == "rle" else _uncompressed(mask)
                rle = mask_api.encode(np.asfortranarray(mask))
            area = float(mask_api.area(rle))
            bbox = [float(v) for v in mask_api.toBbox(rle)]
            if area == 0:
                continue
            if rng.random() < 0.1:  # the file's area is what counts, even when it disagrees
                area *= float(rng.uniform(0.5, 2))
            gt["annotations"].append({"id": ann_id, "image_id": image_id, "category_id": cat, "segmentation": segm,
                                      "area": area, "bbox": bbox, "iscrowd": int(kind == "crowd")})
            ann_id += 1
            # detections near this object
            for _ in range(int(rng.integers(0, 3))):
                m = mask_api.decode(rle)
                shift = rng.integers(-3, 4, size=2)
                m = np.roll(m, tuple(shift), axis=(0, 1))
                if m.sum() == 0:
                    continue
                dts.append(_detection(image_id, cat if rng.random() < 0.9 else int(rng.choice(categories)), m, rng))
        # false positives, and on some images more than 100 detections
        extra = int(rng.integers(0, extra_max)) + (120 if crowded_every and i % crowded_every == 1 else 0)
        for _ in range(extra):
            m = _ellipse(h, w, rng, scale)
            if m.sum() == 0:
                continue
            dts.append(_detection(image_id, int(rng.choice(categories)), m, rng))
    rng.shuffle(dts)
    for d in dts:
        if results == "bbox":
            del d["segmentation"]
        elif results == "segm":
            del d["bbox"]
    return gt, dts


def _detection(image_id, cat, mask, rng):
    rle = _rle_dict(mask)
    bbox = [float(v) for v in mask_api.toBbox(mask_api.encode(np.asfortranarray(mask)))]
    score = float(np.round(rng.uniform(0.01, 1.0), 2))  # two decimals: many ties
    return {"image_id": image_id, "category_id": cat, "bbox": bbox, "score": score, "segmentation": rle}


def write_case(folder, gt, dts):
    (folder / "gt.json").write_text(json.dumps(gt))
    (folder / "dt.json").write_text(json.dumps(dts))
    return folder / "gt.json", folder / "dt.json"


def pycocotools_stats(gt_path, dt_path, iou_type):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(dt_path))
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats], ev
