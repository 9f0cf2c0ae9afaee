"""mrcnn-eval, run for real: the summary, the JSON, --per-class, --config/--weights, and every bad
input as one clear error line with exit 2."""
import json

import pytest

from mrcnn_testing import assert_one_error, sample_images

GT = {
    "images": [{"id": 1, "height": 40, "width": 60}, {"id": 2, "height": 40, "width": 60}],
    "categories": [{"id": 3, "name": "cat"}, {"id": 8, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 10], "area": 200, "iscrowd": 0,
         "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
        {"id": 2, "image_id": 2, "category_id": 8, "bbox": [5, 5, 30, 30], "area": 900, "iscrowd": 0,
         "segmentation": [[5, 5, 35, 5, 35, 35, 5, 35]]},
    ],
}
DT = [
    {"image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 10], "score": 0.9,
     "segmentation": {"size": [40, 60], "counts": "P;:>0000000000000000000R1"}},
    {"image_id": 2, "category_id": 8, "bbox": [0, 0, 10, 10], "score": 0.8},
]


@pytest.fixture
def files(workdir):
    (workdir / "gt.json").write_text(json.dumps(GT))
    (workdir / "dt.json").write_text(json.dumps([{k: v for k, v in d.items() if k != "segmentation"} for d in DT]))
    return workdir


def test_summary_json_and_per_class(run, files):
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "bbox", "--json", "m.json",
                 "--per-class")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "IoU type: bbox"
    assert lines[1].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ")
    assert len([l for l in lines if "@[ IoU=" in l]) == 12
    metrics = json.loads((files / "m.json").read_text())
    assert set(metrics) == {"bbox"}
    assert set(metrics["bbox"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
                                    "ARl"}
    # cat: found exactly (AP 1); dog: missed (AP 0); the mean over both classes is 0.5.
    assert metrics["bbox"]["AP"] == pytest.approx(0.5)
    assert any(l.strip() == "1.000  cat (id 3)" for l in lines)
    assert any(l.strip() == "0.000  dog (id 8)" for l in lines)


def test_segm_on_box_results_is_refused(run, files):
    """Box results (no detection has a mask, as a box-only model writes them) cannot be scored by segm."""
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "segm")
    assert_one_error(result, "mrcnn-eval", "dt.json: --iou-type segm: no detection has a \"segmentation\" (box results, as a model "
                             "without masks writes them); score them with --iou-type bbox")


def test_segm_needs_every_mask(run, files):
    """Mask results with one detection's mask missing: that detection is named."""
    dt = json.loads(json.dumps(DT))
    dt[0]["segmentation"]["counts"] = "j<:n00000000000000000000000000000000000000VU1"  # annotation 1's box
    (files / "dt.json").write_text(json.dumps(dt))
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "segm")
    assert_one_error(result, "mrcnn-eval", "dt.json: detection 1: has no \"segmentation\" (segm evaluation needs masks)")


def test_bad_masks_are_errors_wherever_they_are(run, files):
    """A mask no IoU needs (a detection of a class its image has no ground truth of) is checked
    too, and of several bad masks the first in pycocotools' order (image, class; ground truth
    before detections) is named, whatever the thread count."""
    dt = json.loads(json.dumps(DT))
    dt[0]["segmentation"]["counts"] = "j<:n00000000000000000000000000000000000000VU1"  # annotation 1's box
    dt[1]["segmentation"] = {"size": [40, 60], "counts": "0"}  # image 2, dog: there is one to match
    dt.append({"image_id": 1, "category_id": 8, "bbox": [1, 1, 2, 2], "score": 0.5,
               "segmentation": {"size": [40, 60], "counts": "!"}})  # image 1 has no dog
    (files / "dt.json").write_text(json.dumps(dt))
    for threads in ("1", "2", "4"):
        result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "segm", "--threads", threads)
        assert result.returncode == 2
        assert "dt.json: detection 2: compressed RLE counts contain an invalid character" in result.stderr, result.stderr
    del dt[2]
    (files / "dt.json").write_text(json.dumps(dt))
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "segm", "--threads", "2")
    assert result.returncode == 2
    assert "dt.json: detection 1: compressed RLE counts sum to 0 pixels" in result.stderr, result.stderr
    dt[1]["segmentation"]["counts"] = dt[0]["segmentation"]["counts"]
    (files / "dt.json").write_text(json.dumps(dt))
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "segm", "--json", "m.json")
    assert result.returncode == 0, result.stderr
    assert json.loads((files / "m.json").read_text())["segm"]["AP"] == pytest.approx(0.5)  # cat found, dog missed


def test_first_bad_detection_is_named_at_any_thread_count(run, files):
    """The records are read on several threads; of several bad ones the first in the file is named."""
    dt = [dict(DT[1], score=0.5) for _ in range(3000)]
    dt[2500]["image_id"] = 99
    dt[700]["score"] = "high"
    (files / "dt.json").write_text(json.dumps(dt))
    for threads in ("1", "2", "4"):
        result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--threads", threads)
        assert result.returncode == 2
        assert "dt.json: detection 700: \"score\" must be a number, found \"high\"" in result.stderr, result.stderr


def test_ground_truth_errors_come_first(run, files):
    """The detections file is loaded on a second thread while the ground truth is read; with both
    files bad, the error is the ground truth's, as when one is read after the other."""
    (files / "gt.json").write_text('{"images": [}')
    for dt_text in ("[{]", None):
        if dt_text is None:
            (files / "dt.json").unlink()
        else:
            (files / "dt.json").write_text(dt_text)
        for threads in ("1", "2"):
            result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--threads", threads)
            assert result.returncode == 2
            assert "mrcnn-eval: error: gt.json:1:13: malformed JSON" in result.stderr, result.stderr


@pytest.mark.parametrize("case", ["malformed", "unknown image", "unknown category", "missing score", "short polygon",
                                  "not a list", "gt missing area", "missing file"])
def test_bad_inputs(run, files, case):
    gt = json.loads(json.dumps(GT))
    dt = json.loads(json.dumps(DT))
    dt_text = None
    expected = {
        "malformed": "dt.json:1:3: malformed JSON",
        "unknown image": "dt.json: detection 1: image_id 99 is not in the ground truth gt.json",
        "unknown category": "dt.json: detection 0: category_id 5 is not in the ground truth gt.json",
        "missing score": "dt.json: detection 1: missing \"score\"",
        "short polygon": "gt.json: annotations[0] (id 1): polygon 0 has 4 coordinates; a polygon needs at least 3 points",
        "not a list": "dt.json: expected a list of detections (COCO results format)",
        "gt missing area": "gt.json: annotations[1] (id 2): missing \"area\"",
        "missing file": "dt.json: cannot read: no such file",
    }[case]
    if case == "malformed":
        dt_text = "[{]"
    elif case == "unknown image":
        dt[1]["image_id"] = 99
    elif case == "unknown category":
        dt[0]["category_id"] = 5
    elif case == "missing score":
        del dt[1]["score"]
    elif case == "short polygon":
        gt["annotations"][0]["segmentation"] = [[1, 2, 3, 4]]
    elif case == "not a list":
        dt_text = json.dumps({"annotations": dt})
    elif case == "gt missing area":
        del gt["annotations"][1]["area"]
    (files / "gt.json").write_text(json.dumps(gt))
    if case == "missing file":
        (files / "dt.json").unlink()
    else:
        (files / "dt.json").write_text(dt_text if dt_text is not None else json.dumps(dt))
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--json", "m.json")
    assert result.returncode == 2
    assert expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (files / "m.json").exists()


def test_needs_inputs(run):
    result = run("mrcnn-eval")
    assert result.returncode == 2 and "give --gt and --dt, or --config and --weights" in result.stderr


@pytest.mark.parametrize("value", ["0", "-3", "100001", "many"])
def test_max_dets_out_of_range(run, files, value):
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--max-dets", value)
    assert result.returncode == 2
    assert result.stderr.startswith("mrcnn-eval: error: --max-dets: ") and value in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_max_dets_names_the_cut_in_every_line(run, files):
    result = run("mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--iou-type", "bbox", "--max-dets", "250",
                 "--per-class")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum("maxDets=250 ]" in l for l in lines) == 10, result.stdout  # all but AR1 and AR10
    assert "all areas, 250 detections" in result.stdout


def test_model_on_config_val_set(run, workdir, small_model):
    """--config/--weights runs inference over the val set's images, then evaluates."""
    weights, config = small_model
    paths = sample_images(workdir / "val")
    from PIL import Image
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    for i, p in enumerate(paths):
        w, h = Image.open(p).size
        gt["images"].append({"id": i + 1, "file_name": p.name, "height": h, "width": w})
        gt["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [10, 10, 50, 80],
                                  "area": 4000, "iscrowd": 0, "segmentation": [[10, 10, 60, 10, 60, 90, 10, 90]]})
    (workdir / "val.json").write_text(json.dumps(gt))
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": {"format": "coco", "annotations": "val.json", "images": "val"}}
    cfg["eval"] = {"device": "cpu"}
    (workdir / "c.json").write_text(json.dumps(cfg))
    result = run("mrcnn-eval", "--config", "c.json", "--weights", weights, "--json", "m.json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((workdir / "m.json").read_text())
    assert set(metrics) == {"bbox", "segm"}
    assert all(-1 <= v <= 1 for v in metrics["segm"].values())
    # eval.iou_types picks the metrics; --iou-type overrides it.
    cfg["eval"]["iou_types"] = ["segm"]
    (workdir / "segm.json").write_text(json.dumps(cfg))
    result = run("mrcnn-eval", "--config", "segm.json", "--weights", weights, "--json", "segm_m.json")
    assert result.returncode == 0, result.stderr
    assert set(json.loads((workdir / "segm_m.json").read_text())) == {"segm"}
    assert "IoU type: bbox" not in result.stdout and "IoU type: segm" in result.stdout
    assert json.loads((workdir / "segm_m.json").read_text())["segm"] == metrics["segm"]
    result = run("mrcnn-eval", "--config", "segm.json", "--weights", weights, "--iou-type", "bbox", "--json",
                 "bbox_m.json")
    assert result.returncode == 0, result.stderr
    assert set(json.loads((workdir / "bbox_m.json").read_text())) == {"bbox"}


def test_config_val_set_pixel_limit_reaches_inference(run, workdir, small_model):
    """A mask_png val set's ground truth and its inference (the child mrcnn-infer) take the same
    data.max_image_pixels: lowered below an image it is refused by name, raised it is used."""
    import numpy as np
    from PIL import Image
    weights, config = small_model
    for folder in ("val/images", "val/masks"):
        (workdir / folder).mkdir(parents=True)
    for name, side in (("small", 40), ("large", 80)):
        Image.fromarray(np.full((side, side, 3), 90, np.uint8)).save(workdir / "val/images" / f"{name}.png")
        mask = np.zeros((side, side), np.uint8)
        mask[5:30, 5:30] = 1
        Image.fromarray(mask).save(workdir / "val/masks" / f"{name}.png")
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": {"format": "mask_png", "images": "val/images", "annotations": "val/masks"},
                   "max_image_pixels": 2000}
    cfg["eval"] = {"device": "cpu"}
    (workdir / "low.json").write_text(json.dumps(cfg))
    cfg["data"]["max_image_pixels"] = 10000
    (workdir / "high.json").write_text(json.dumps(cfg))
    low = run("mrcnn-eval", "--config", "low.json", "--weights", weights)
    # The child's one line, under mrcnn-eval's name.
    assert_one_error(low, "mrcnn-eval", "large.png: image of 80x80 pixels is larger than the limit of 2000 pixels")
    high = run("mrcnn-eval", "--config", "high.json", "--weights", weights, "--json", "m.json")
    assert high.returncode == 0, high.stderr
