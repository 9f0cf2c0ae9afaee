"""mrcnn-visualize on generated data, checking the drawn pixels: mask colour blended at the given
alpha, box edges where the box is, nothing below the score threshold, output sizes, layouts; and
the bad inputs (unknown images, unreadable images, broken metrics lines, unwritable outputs)."""
import json

import numpy as np
import pytest
from PIL import Image

from mrcnn_testing import assert_one_error

GRAY = 120
# viz::class_color: the palette by class id (RGB).
CLASS_1 = np.array([60, 180, 75])
CLASS_2 = np.array([255, 225, 25])


def rle_of(mask):
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode()}


def gray_image(path, width=200, height=160):
    Image.fromarray(np.full((height, width, 3), GRAY, np.uint8)).save(path)


def read(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.fixture
def scene(workdir):
    """One gray 200x160 image with a confident class-1 detection (box and mask) and a weak one."""
    (workdir / "images").mkdir()
    gray_image(workdir / "images" / "a.png")
    mask = np.zeros((160, 200), bool)
    mask[70:96, 50:91] = True
    weak = np.zeros((160, 200), bool)
    weak[20:50, 130:170] = True
    results = [
        {"image_id": 1, "file_name": "images/a.png", "category_id": 1, "bbox": [40, 60, 60, 40], "score": 0.9,
         "segmentation": rle_of(mask)},
        {"image_id": 1, "file_name": "images/a.png", "category_id": 2, "bbox": [130, 20, 40, 30], "score": 0.3,
         "segmentation": rle_of(weak)},
    ]
    (workdir / "results.json").write_text(json.dumps(results))
    return workdir


def test_detections_blend_masks_draw_boxes_and_respect_the_threshold(run, scene):
    result = run("mrcnn-visualize", "detections", "--images", "images", "--results", "results.json", "-o", "out",
                 "--alpha", "0.5", "--score-threshold", "0.5", "--line-thickness", "2")
    assert result.returncode == 0, result.stderr
    drawn = read(scene / "out" / "a.png")
    assert drawn.shape == (160, 200, 3)
    expected = GRAY * 0.5 + CLASS_1 * 0.5
    assert np.abs(drawn[85, 70] - expected).max() <= 2  # inside the mask, away from its outline
    assert np.abs(drawn[80, 40] - CLASS_1).max() <= 40  # the box's left edge (anti-aliased)
    assert np.abs(drawn[99, 70] - CLASS_1).max() <= 40  # its bottom edge
    assert (drawn[30:45, 135:165] == GRAY).all()  # the weak detection is not drawn
    assert (drawn[130:155, 10:30] == GRAY).all()  # nor anything elsewhere
    # The tag sits above the box, inside the image, filled with the class colour.
    assert np.abs(drawn[50, 45] - CLASS_1).max() <= 40

    result = run("mrcnn-visualize", "detections", "--images", "images", "--results", "results.json", "-o", "low",
                 "--score-threshold", "0.2", "--alpha", "1")
    assert result.returncode == 0, result.stderr
    assert np.abs(read(scene / "low" / "a.png")[35, 150] - CLASS_2).max() <= 2

    result = run("mrcnn-visualize", "detections", "--images", "images", "--results", "results.json", "-o", "only2",
                 "--score-threshold", "0.2", "--classes", "2")
    assert result.returncode == 0, result.stderr
    assert (read(scene / "only2" / "a.png")[85, 70] == GRAY).all()


def test_detections_bad_inputs(run, scene):
    records = json.loads((scene / "results.json").read_text())
    records.append({**records[0], "image_id": 7, "file_name": "images/elsewhere.png"})
    (scene / "more.json").write_text(json.dumps(records))
    result = run("mrcnn-visualize", "detections", "--images", "images", "--results", "more.json", "-o", "out")
    assert result.returncode == 0, result.stderr
    assert "1 results of 1 images are not among --images" in result.stderr

    (scene / "broken").mkdir()
    (scene / "broken" / "a.png").write_bytes(b"not a png at all")
    result = run("mrcnn-visualize", "detections", "--images", "broken", "--results", "results.json", "-o", "o2")
    assert result.returncode == 2 and "broken/a.png" in result.stderr

    (scene / "blocker").write_text("a file where a folder should be")
    result = run("mrcnn-visualize", "detections", "--images", "images", "--results", "results.json",
                 "-o", "blocker/out")
    assert result.returncode == 2 and "blocker/out" in result.stderr

    no_names = [{k: v for k, v in r.items() if k != "file_name"} for r in records]
    (scene / "ids.json").write_text(json.dumps(no_names))
    result = run("mrcnn-visualize", "detections", "--images", "images", "--results", "ids.json", "-o", "o3")
    assert result.returncode == 2 and "give --coco" in result.stderr


@pytest.fixture
def shapes(make_shapes):
    return make_shapes("shapes", train=2, val=3)


def results_from_truth(gt, drop=0, false_positive=True):
    """Detections equal to the ground truth (score 1), minus `drop` of them, plus a false positive."""
    records = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0,
                "segmentation": a["segmentation"]} for a in gt["annotations"]][drop:]
    if false_positive:
        image = gt["images"][0]
        mask = np.zeros((image["height"], image["width"]), bool)
        mask[0:6, 0:6] = True
        records.append({"image_id": image["id"], "category_id": 1, "bbox": [0, 0, 6, 6], "score": 0.99,
                        "segmentation": rle_of(mask)})
    return records


def test_ground_truth_and_comparison_layouts(run, workdir, shapes):
    gt = json.loads((shapes / "val.json").read_text())
    result = run("mrcnn-visualize", "gt", "--coco", "shapes/val.json", "--image-root", "shapes/val", "-o", "gt")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (workdir / "gt").iterdir()) == sorted(
        im["file_name"].rsplit(".", 1)[0] + ".png" for im in gt["images"])
    original = read(shapes / "val" / gt["images"][0]["file_name"])
    drawn = read(workdir / "gt" / (gt["images"][0]["file_name"].rsplit(".", 1)[0] + ".png"))
    assert drawn.shape == original.shape and (drawn != original).any()

    (workdir / "dt.json").write_text(json.dumps(results_from_truth(gt, drop=1)))
    result = run("mrcnn-visualize", "compare", "--coco", "shapes/val.json", "--image-root", "shapes/val",
                 "--results", "dt.json", "-o", "cmp")
    assert result.returncode == 0, result.stderr
    total = len(gt["annotations"])
    assert f"{total - 1} matched, 1 false positives, 1 missed" in result.stderr
    sheet = read(workdir / "cmp" / (gt["images"][0]["file_name"].rsplit(".", 1)[0] + ".png"))
    assert sheet.shape == (64 + 40, 64 + 8 + 64, 3)  # a two-line caption strip; two panels and the gap

    (workdir / "unknown.json").write_text(json.dumps([{**results_from_truth(gt)[0], "image_id": 999}]))
    result = run("mrcnn-visualize", "compare", "--coco", "shapes/val.json", "--image-root", "shapes/val",
                 "--results", "unknown.json", "-o", "cmp2")
    assert result.returncode == 2 and "999" in result.stderr


def test_crowd_regions_are_hatched(run, workdir, shapes):
    gt = json.loads((shapes / "val.json").read_text())
    image = gt["images"][0]
    mask = np.zeros((image["height"], image["width"]), bool)
    mask[40:60, 4:30] = True
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] != image["id"]]
    gt["annotations"].append({"id": 9999, "image_id": image["id"], "category_id": 1, "iscrowd": 1,
                              "bbox": [4, 40, 26, 20], "area": int(mask.sum()), "segmentation": rle_of(mask)})
    (workdir / "crowd.json").write_text(json.dumps(gt))
    result = run("mrcnn-visualize", "gt", "--coco", "crowd.json", "--image-root", "shapes/val", "-o", "gt",
                 "--max-images", "1")
    assert result.returncode == 0, result.stderr
    original = read(shapes / "val" / image["file_name"])
    drawn = read(workdir / "gt" / (image["file_name"].rsplit(".", 1)[0] + ".png"))
    changed = (drawn != original).any(axis=2)
    inside = changed[42:58, 6:28].mean()
    assert 0.1 < inside < 0.9  # hatching lines, not a solid fill
    assert not changed[0:30, 40:64].any()


def test_grid_sheet_size(run, workdir, shapes):
    result = run("mrcnn-visualize", "grid", "--images", "shapes/train", "shapes/val", "-o", "sheet.png",
                 "--columns", "2", "--cell-width", "50")
    assert result.returncode == 0, result.stderr
    sheet = read(workdir / "sheet.png")
    # 5 images of 64x64 in 2 columns: cells 50 wide (+6 gaps), 50 high + 20 caption (+6 gaps).
    assert sheet.shape == (3 * (50 + 20 + 6) + 6, 2 * (50 + 6) + 6, 3)


def test_curves_skip_broken_lines(run, workdir):
    lines = []
    for step in range(1, 41):
        lines.append(json.dumps({"step": step, "lr": 0.01 * min(1, step / 10), "loss": 3 / step ** 0.5,
                                 "loss_mask": 1 / step ** 0.5, "loss_classifier": 0.5 / step, "time": 1.0}))
        if step % 20 == 0:
            lines.append(json.dumps({"step": step, "val": {"bbox": {"AP": step / 80, "AP50": step / 50},
                                                           "segm": {"AP": step / 90, "AP50": step / 60}}}))
    lines.insert(10, '{"step": 11, "loss": 0.')  # a run killed mid-write
    (workdir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    result = run("mrcnn-visualize", "curves", "--metrics", "metrics.jsonl", "-o", "curves.png")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 lines" in result.stderr
    assert read(workdir / "curves.png").shape == (760, 1120, 3)

    (workdir / "empty.jsonl").write_text("garbage\n")
    result = run("mrcnn-visualize", "curves", "--metrics", "empty.jsonl", "-o", "c2.png")
    assert result.returncode == 2 and "no metrics records" in result.stderr


def test_precision_recall_figure(run, workdir, shapes):
    gt = json.loads((shapes / "val.json").read_text())
    (workdir / "dt.json").write_text(json.dumps(results_from_truth(gt, drop=1)))
    for iou_type in ("segm", "bbox"):
        result = run("mrcnn-visualize", "pr", "--gt", "shapes/val.json", "--dt", "dt.json", "-o", f"pr-{iou_type}.png",
                     "--iou-type", iou_type)
        assert result.returncode == 0, result.stderr
        assert read(workdir / f"pr-{iou_type}.png").shape == (420, 1120, 3)
        assert f"{iou_type} precision-recall curves written" in result.stderr


def test_precision_recall_type_follows_the_results(run, workdir, shapes):
    """--iou-type auto, the default: segm for mask results, bbox for box results (as a model without
    masks writes them); segm asked of box results is one error naming the file."""
    gt = json.loads((shapes / "val.json").read_text())
    masks = results_from_truth(gt, drop=1)
    (workdir / "masks.json").write_text(json.dumps(masks))
    (workdir / "boxes.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "segmentation"} for r in masks]))
    for results, expected in (("masks.json", "segm"), ("boxes.json", "bbox")):
        result = run("mrcnn-visualize", "pr", "--gt", "shapes/val.json", "--dt", results, "-o", f"{expected}.png")
        assert result.returncode == 0, result.stderr
        assert f"{expected} precision-recall curves written" in result.stderr
        assert read(workdir / f"{expected}.png").shape == (420, 1120, 3)
    result = run("mrcnn-visualize", "pr", "--gt", "shapes/val.json", "--dt", "boxes.json", "-o", "x.png",
                 "--iou-type", "segm")
    assert_one_error(result, "mrcnn-visualize", "boxes.json: --iou-type segm: no detection has a \"segmentation\"")
    assert not (workdir / "x.png").exists()
