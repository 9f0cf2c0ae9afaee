"""Hostile masks and COCO records through the real tools: RLE sizes of 0, negative or beyond 64
bits, counts that do not sum to height x width (these divided by zero or looped forever), polygon
coordinates of 1e12 (out of memory) or 2e7 (gigabytes), image sizes that are no pixel counts,
values of the wrong type, and a TFRecord shard shorthand of 300 million names. Each ends within
seconds in exit 2 and one line "<tool>: error: <message naming the file and the record>"."""
import json

import pytest

from mrcnn_testing import assert_one_error, run_tool

H, W = 40, 60
VALID_COUNTS = "j<:n00000000000000000000000000000000000000VU1"  # a 20 x 10 box at (10, 10) in 40 x 60
POLYGON = [[10, 10, 30, 10, 30, 20, 10, 20]]


def ground_truth(segmentation=None, image=None, category=None, **annotation):
    record = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "area": 200, "iscrowd": 0,
              "segmentation": POLYGON if segmentation is None else segmentation}
    record.update(annotation)
    return {"images": [image or {"id": 1, "height": H, "width": W, "file_name": "a.png"}],
            "categories": [category or {"id": 1, "name": "cat"}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25,
                             "iscrowd": 0, "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]]}, record]}


def detections(segmentation=None):
    record = {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "score": 0.9,
              "segmentation": {"size": [H, W], "counts": VALID_COUNTS} if segmentation is None else segmentation}
    return [record]


def run_refused(cwd, tool, *args):
    """Runs a tool that must refuse its input, quickly: the one error line, here short and the only
    line of stderr that mentions an error, log lines included."""
    result = run_tool(cwd, tool, *args, timeout=20)
    line = assert_one_error(result, tool)
    assert [l for l in result.stderr.splitlines() if "error" in l.lower()] == [line], result.stderr[-2000:]
    assert len(line) < 400, line[:500]
    return line


def evaluate(workdir, gt, dt=None, iou_type="segm"):
    (workdir / "gt.json").write_text(json.dumps(gt))
    (workdir / "dt.json").write_text(json.dumps(detections() if dt is None else dt))
    return run_refused(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", iou_type,
                       "--json", "m.json")


GT_WHERE = "gt.json: annotations[1] (id 1): "

# (segmentation, the message after GT_WHERE)
BAD_GT_SEGMENTATIONS = {
    "size 0 x W": ({"size": [0, W], "counts": ""}, 'RLE "size": mask size [0, 60]: height and width must be positive'),
    "size 0 x 0": ({"size": [0, 0], "counts": []}, 'RLE "size": mask size [0, 0]: height and width must be positive'),
    "negative size": ({"size": [-H, W], "counts": [0]}, "height and width must be positive"),
    "size 2^63": ({"size": [2 ** 63, W], "counts": [0]}, 'RLE "segmentation" needs "size": [height, width] (integers)'),
    "size beyond uint64": ({"size": [H, 2 ** 70], "counts": [0]}, 'needs "size": [height, width] (integers)'),
    "size 2^31 x 2^31": ({"size": [2 ** 31, 2 ** 31], "counts": [0]}, "has more than 2147483647 pixels"),
    "fractional size": ({"size": [40.5, W], "counts": [2430]}, '"size": [height, width] (integers), found a list'),
    "size a string": ({"size": "x", "counts": [2400]}, 'found "x"'),
    "counts short": ({"size": [H, W], "counts": [10, 5]}, 'RLE counts sum to 15 pixels, but "size" [40, 60] has 2400'),
    "counts long": ({"size": [H, W], "counts": [2400, 1]}, "RLE counts sum to more than the 2400 pixels"),
    "counts beyond 32 bits": ({"size": [H, W], "counts": [2 ** 32 + 5]}, "sum to more than the 2400 pixels"),
    "counts negative": ({"size": [H, W], "counts": [-5, 2405]}, "RLE counts must be non-negative integers, found -5"),
    "counts with a string": ({"size": [H, W], "counts": [1, "a"]}, 'must be non-negative integers, found "a" at 1'),
    "compressed short": ({"size": [H, W + 1], "counts": VALID_COUNTS},
                         "compressed RLE counts sum to 2400 pixels, but size [40, 61] has 2440"),
    "compressed long": ({"size": [H - 1, W], "counts": VALID_COUNTS}, "compressed RLE counts sum to more than"),
    "compressed endless number": ({"size": [H, W], "counts": "o" * 30}, "longer than 12 characters"),
    "counts a number": ({"size": [H, W], "counts": 5}, 'RLE "counts" must be a string or a list of run lengths'),
    "segmentation a number": (5, '"segmentation" must be polygons or an RLE object, found 5'),
    "polygon at 1e12": ([[0, 0, 1e12, 0, 5, 5]], "polygon 0: coordinate 2 is 1e+12"),
    "polygon of strings": ([[0, 0, "5", 0, 5, 5]], "polygon 0 must be a list of numbers"),
}


# Compressed counts are decoded, as pycocotools does, only where a mask is needed (segm).
DECODED_WHEN_NEEDED = {"compressed short", "compressed long", "compressed endless number"}


@pytest.mark.parametrize("case, iou_type", [(case, iou_type) for case in BAD_GT_SEGMENTATIONS
                                             for iou_type in ("segm", "bbox")
                                             if iou_type == "segm" or case not in DECODED_WHEN_NEEDED])
def test_bad_ground_truth_segmentations(workdir, case, iou_type):
    segmentation, message = BAD_GT_SEGMENTATIONS[case]
    line = evaluate(workdir, ground_truth(segmentation), iou_type=iou_type)
    assert line.startswith("mrcnn-eval: error: " + GT_WHERE), line
    assert message in line, line
    assert not (workdir / "m.json").exists()


@pytest.mark.parametrize("case, segmentation, message", [
    ("size 0 x W", {"size": [0, W], "counts": ""}, "mask size [0, 60]: height and width must be positive"),
    # counts that do not sum to H x W against a crowd ground truth: the IoU loop never ended
    ("counts short", {"size": [H, W], "counts": [10, 5]}, "RLE counts sum to 15 pixels"),
    ("compressed long", {"size": [H - 1, W], "counts": VALID_COUNTS}, "compressed RLE counts sum to more than"),
])
def test_bad_detection_masks(workdir, case, segmentation, message):
    gt = ground_truth({"size": [H, W], "counts": [0, H * W]}, iscrowd=1)
    line = evaluate(workdir, gt, detections(segmentation))
    assert line.startswith("mrcnn-eval: error: dt.json: detection 0: "), line
    assert message in line, line


@pytest.mark.parametrize("case, change, message", [
    ("height 0", {"height": 0}, 'images[0]: "height" is 0; expected a positive number of pixels'),
    ("width negative", {"width": -5}, 'images[0]: "width" is -5'),
    ("height huge", {"height": 10 ** 10}, '"height" is 10000000000'),
    ("too many pixels", {"height": 2 ** 20, "width": 2 ** 20}, "images[0]: image mask size [1048576, 1048576] has more"),
    ("fractional width", {"width": 60.5}, 'images[0]: "width" must be an integer, found 60.5'),
    ("width a string", {"width": "60"}, '"width" must be an integer, found "60"'),
    ("id beyond int64", {"id": 2 ** 64}, '"id" must be an integer'),
])
def test_bad_image_records(workdir, case, change, message):
    image = {"id": 1, "height": H, "width": W}
    image.update(change)
    line = evaluate(workdir, ground_truth(image=image))
    assert line.startswith("mrcnn-eval: error: gt.json: "), line
    assert message in line, line


@pytest.mark.parametrize("case, gt, message", [
    ("bbox a string", ground_truth(bbox="x"), GT_WHERE + '"bbox" must be [x, y, width, height], found "x"'),
    ("bbox of a long list", ground_truth(bbox=list(range(100000))), '"bbox" must be [x, y, width, height], found a list'),
    ("category id huge", ground_truth(category={"id": 2 ** 64, "name": "x"}), 'categories[0]: "id" must be an integer'),
    ("category id a list", ground_truth(category={"id": [1] * 100000}), "found a list of 100000 values"),
    ("image id huge", ground_truth(image_id=-2 ** 65), GT_WHERE + '"image_id" must be an integer'),
    ("area a string", ground_truth(area="x" * 100000), '"area" must be a number, found a string of 100000 characters'),
])
def test_wrong_types_in_ground_truth(workdir, case, gt, message):
    line = evaluate(workdir, gt)
    assert message in line, line


def test_category_name_of_another_type_is_shown_as_its_value(workdir):
    (workdir / "gt.json").write_text(json.dumps(ground_truth(category={"id": 1, "name": 5})))
    (workdir / "dt.json").write_text(json.dumps(detections()))
    result = run_tool(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--per-class", timeout=20)
    assert result.returncode == 0, result.stderr
    assert "5 (id 1)" in result.stdout


def test_polygon_far_outside_costs_the_image_not_the_coordinates(workdir):
    """2e7 took 2.3 GB: the outline is only followed inside the image now (here under 1 GB)."""
    far = [[-2e7, -2e7, 2e7, -2e7, 2e7, 2e7, -2e7, 2e7]]  # covers the whole image
    gt = ground_truth(far, area=H * W)
    gt["annotations"] = gt["annotations"][1:]
    (workdir / "gt.json").write_text(json.dumps(gt))
    full = {"size": [H, W], "counts": [0, H * W]}
    (workdir / "dt.json").write_text(json.dumps(detections(full)))
    limit = 1 << 30
    result = run_tool(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "segm", "--json",
                      "m.json", "--threads", "1", timeout=20, address_space=limit)
    assert result.returncode == 0, result.stderr
    # the detection covers the far polygon's mask exactly: AP 1 on that category
    assert json.loads((workdir / "m.json").read_text())["segm"]["AP"] == pytest.approx(1.0)


def test_zigzag_outside_the_image_reserves_nothing(workdir):
    """A million edges between x = 2000 and x = 1e8 beside a 1000-pixel-wide image cross none of its
    columns; each once reserved room for a crossing per image column (4 GB: out of memory, exit 3)."""
    side = 1000
    zigzag = [v for i in range(500_000) for v in ((2000.0, 10.0 + i % 900), (1e8, 10.0 + i % 900))[i % 2]]
    gt = ground_truth([zigzag], image={"id": 1, "height": side, "width": side, "file_name": "a.png"}, area=1)
    (workdir / "gt.json").write_text(json.dumps(gt))
    full = {"size": [side, side], "counts": [0, side * side]}
    (workdir / "dt.json").write_text(json.dumps(detections(full)))
    result = run_tool(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "segm", "--json",
                      "m.json", "--threads", "1", timeout=20, address_space=1 << 30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((workdir / "m.json").read_text())["segm"]["AP"] >= 0


def write_config(workdir, data):
    from mrcnn_testing import SOURCE_DIR
    cfg = json.loads((SOURCE_DIR / "configs" / "shapes_tiny_cpu.json").read_text())
    cfg["model"]["min_size"] = [64]
    cfg["model"]["max_size"] = 64
    cfg["data"]["train"] = data
    cfg["data"]["val"] = data
    (workdir / "c.json").write_text(json.dumps(cfg))
    return "c.json"


def hostile_coco(workdir):
    """images/a.png and gt.json whose second annotation has an RLE of size [0, W]."""
    from PIL import Image
    (workdir / "images").mkdir()
    Image.new("RGB", (W, H)).save(workdir / "images" / "a.png")
    (workdir / "gt.json").write_text(json.dumps(ground_truth({"size": [0, W], "counts": ""})))
    return {"format": "coco", "images": "images", "annotations": "gt.json"}


def test_train_refuses_a_zero_size_rle(workdir):
    config = write_config(workdir, hostile_coco(workdir))
    line = run_refused(workdir, "mrcnn-train", "--config", config, "--output-dir", "run", "--device", "cpu")
    assert GT_WHERE + 'RLE "size": mask size [0, 60]' in line, line


def test_visualize_ground_truth_refuses_a_zero_size_rle(workdir):
    hostile_coco(workdir)
    line = run_refused(workdir, "mrcnn-visualize", "gt", "--coco", "gt.json", "--image-root", "images", "-o", "out")
    assert GT_WHERE + 'RLE "size": mask size [0, 60]' in line, line


def test_infer_dataset_refuses_a_zero_size_rle(workdir, small_model):
    weights, config = small_model
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": hostile_coco(workdir)}
    (workdir / "c.json").write_text(json.dumps(cfg))
    line = run_refused(workdir, "mrcnn-infer", "--config", "c.json", "--weights", weights, "--dataset", "val",
                       "--output", "out.json", "--device", "cpu")
    assert GT_WHERE + 'RLE "size": mask size [0, 60]' in line, line


@pytest.mark.parametrize("shards", ["300000000", "99999999999999999999999"])
def test_train_refuses_300_million_shards(workdir, shards):
    (workdir / "images").mkdir()
    config = write_config(workdir, {"format": "tfrecord", "images": "images", "annotations": f"train.record@{shards}"})
    line = run_refused(workdir, "mrcnn-train", "--config", config, "--output-dir", "run", "--device", "cpu")
    assert "train.record@" in line and "too many shards; at most 100000 are supported" in line, line
