"""mrcnn-config anchors and mrcnn-visualize anchors: the report's numbers on boxes whose best anchor
IoU is known in closed form, the same numbers from a brute-force numpy reference over every anchor,
the proposal on a small-object set, --apply writing a configuration that validates and trains,
fine-tuning into another anchor count, and the bad inputs."""
import json

import numpy as np
import pytest

from mrcnn_testing import assert_one_error, write_mask_pngs, write_records, write_tiny_shapes_config

DEFAULT_ANCHORS = {"sizes": [[32], [64], [128], [256], [512]], "aspect_ratios": [0.5, 1.0, 2.0]}


def write_coco(folder, images, name="train"):
    """folder/name.json and empty image files: images is a list of (height, width, [x1, y1, x2, y2] ...).
    The reader reads annotations only (mrcnn-config anchors never decodes a pixel)."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    for image_id, (h, w, boxes) in enumerate(images, 1):
        (folder / name / f"{image_id}.png").write_bytes(b"")
        doc["images"].append({"id": image_id, "file_name": f"{image_id}.png", "height": h, "width": w})
        for x1, y1, x2, y2 in boxes:
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                                       "iscrowd": 0, "area": (x2 - x1) * (y2 - y1), "bbox": [x1, y1, x2 - x1, y2 - y1],
                                       "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]]})
    (folder / f"{name}.json").write_text(json.dumps(doc))


def write_config(folder, min_size, max_size, anchors=None, name="run.json", **model):
    cfg = {"model": {"num_classes": 2, "min_size": min_size, "max_size": max_size,
                     "anchor": anchors or DEFAULT_ANCHORS, **model},
           "data": {"train": {"format": "coco", "images": "train", "annotations": "train.json"}}}
    (folder / name).write_text(json.dumps(cfg))
    return name


def report(run, workdir, config, *extra):
    result = run("mrcnn-config", "anchors", config, "--json", "report.json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads((workdir / "report.json").read_text()), result


def buckets(table):
    return {b["name"]: (b["boxes"], b["positive"], b["iou50"], b["below_bg"]) for b in table["buckets"]}


# Boxes of a 128 x 128 image whose best IoU with square anchors of 32, 64, 128, 256, 512 (strides
# 4, 8, 16, 32, 64) is known: equal to the P2 anchor at (40, 40): 1; a 16-pixel box centred on a
# P2 location: (16 * 16) / (32 * 32) = 0.25; equal to the P3 anchor at (64, 64): 1; a 100-pixel box
# inside the P4 anchor at (64, 64): 100^2 / 128^2 = 0.61.
CLOSED_FORM = [[24, 24, 56, 56], [72, 72, 88, 88], [32, 32, 96, 96], [14, 14, 114, 114]]
SQUARES = {"sizes": [[32], [64], [128], [256], [512]], "aspect_ratios": [1.0]}


def test_report_numbers_in_closed_form(run, workdir):
    write_coco(workdir, [(128, 128, CLOSED_FORM)])
    config = write_config(workdir, [128], 128, SQUARES)  # the resize is the identity
    doc, result = report(run, workdir, config)
    assert doc["measured_boxes"] == 4 and doc["train_set"]["boxes"] == 4 and doc["train_set"]["images"] == 1
    assert (doc["fg_iou_thresh"], doc["bg_iou_thresh"]) == (0.7, 0.3)
    got = buckets(doc["current"])
    # (boxes, best IoU >= 0.7, >= 0.5, < 0.3)
    assert got["COCO small (area < 32^2)"] == (1, 0, 0, 1)
    assert got["COCO medium (32^2-96^2)"] == (2, 2, 2, 0)
    assert got["COCO large (area >= 96^2)"] == (1, 0, 1, 0)
    assert got["sqrt(area) < 8"] == got["8-16"] == got[">= 128"] == (0, 0, 0, 0)
    assert got["16-32"] == (1, 0, 0, 1) and got["32-64"] == (1, 1, 1, 0) and got["64-128"] == (2, 1, 2, 0)
    assert got["all"] == (4, 2, 3, 1)
    assert doc["current"]["sizes"] == SQUARES["sizes"] and doc["current"]["anchors_per_location"] == 1
    # The table says the same.
    assert "16-32" in result.stdout and "COCO small" in result.stdout
    # Never worse than the current anchors.
    assert buckets(doc["proposed"])["all"][1] >= 2


def test_every_format_gives_the_same_numbers(run, workdir):
    pytest.importorskip("tfrecord")
    images = [(128, 128, [box]) for box in CLOSED_FORM]
    write_coco(workdir, images)
    write_mask_pngs(workdir, images)
    write_records(workdir / "train.record", images)
    sets = {"coco": {"format": "coco", "images": "train", "annotations": "train.json"},
            "mask_png": {"format": "mask_png", "images": "png_images", "annotations": "png_masks"},
            "tfrecord": {"format": "tfrecord", "images": "", "annotations": "train.record"}}
    for name, train_set in sets.items():
        cfg = json.loads((workdir / write_config(workdir, [128], 128, SQUARES)).read_text())
        cfg["data"]["train"] = train_set
        (workdir / "run.json").write_text(json.dumps(cfg))
        doc, _ = report(run, workdir, "run.json")
        assert buckets(doc["current"])["all"] == (4, 2, 3, 1), name
        assert doc["train_set"]["source"] == f"{name} {train_set['annotations']}"


def test_every_min_size_counts(run, workdir):
    """min_size [128, 64]: each box once per scale; at 64 the boxes halve: 0.25, 1/16, 1, 0.61."""
    write_coco(workdir, [(128, 128, CLOSED_FORM)])
    doc, _ = report(run, workdir, write_config(workdir, [128, 64], 128, SQUARES))
    assert doc["measured_boxes"] == 8 and doc["min_size"] == [128, 64]
    assert buckets(doc["current"])["all"] == (8, 3, 5, 3)


def test_the_threshold_keys_decide(run, workdir):
    write_coco(workdir, [(128, 128, CLOSED_FORM)])
    config = write_config(workdir, [128], 128, SQUARES, rpn={"fg_iou_thresh": 0.6, "bg_iou_thresh": 0.2})
    doc, _ = report(run, workdir, config)
    assert buckets(doc["current"])["all"] == (4, 3, 3, 0)


def test_random_crop_is_named_with_how_much_it_enlarges_boxes(run, workdir):
    """The report measures uncropped images; random_crop's zoom makes training boxes larger."""
    write_coco(workdir, [(128, 128, CLOSED_FORM)])
    plain = write_config(workdir, [128], 128, SQUARES)
    assert "random_crop" not in report(run, workdir, plain)[1].stderr
    cfg = json.loads((workdir / plain).read_text())
    cfg["data"]["augmentation"] = [{"type": "random_crop", "prob": 0.3, "min_scale": 0.6}]
    (workdir / "crop.json").write_text(json.dumps(cfg))
    doc, result = report(run, workdir, "crop.json")
    assert "data.augmentation has random_crop (crop sides 0.6-1 of the image, prob 0.3)" in result.stderr
    assert "up to 1.7x beyond the sizes measured here" in result.stderr
    assert buckets(doc["current"])["all"] == (4, 2, 3, 1)  # the numbers stay those of the images as they are


# A numpy reference: every anchor of every level placed on the padded image, the IoU in float32.
def reference_anchors(sizes, ratios, padded):
    h_ratios = np.sqrt(np.array(ratios, dtype=np.float32))
    w_ratios = np.float32(1) / h_ratios
    levels, (fh, fw) = [], ((padded[0] + 3) // 4, (padded[1] + 3) // 4)
    for level_sizes in sizes:
        scales = np.array(level_sizes, dtype=np.float32)
        ws, hs = (w_ratios[:, None] * scales[None, :]).ravel(), (h_ratios[:, None] * scales[None, :]).ravel()
        cell = np.round(np.stack([-ws, -hs, ws, hs], 1) / np.float32(2))  # half to even, as torch.round
        sy, sx = padded[0] // fh, padded[1] // fw
        ys, xs = np.meshgrid(np.arange(fh) * sy, np.arange(fw) * sx, indexing="ij")
        shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], 1).astype(np.float32)
        levels.append((shifts[:, None, :] + cell[None]).reshape(-1, 4))
        fh, fw = (fh + 1) // 2, (fw + 1) // 2
    return np.concatenate(levels)


def reference_best_ious(boxes, anchors):
    boxes = np.asarray(boxes, dtype=np.float32)
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_a = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    lt = np.maximum(boxes[:, None, :2], anchors[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], anchors[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return (inter / (area_b[:, None] + area_a[None, :] - inter)).max(1)


def small_object_set(seed=0, images=6, side=256, count=60):
    """Images of side x side pixels with count boxes of 6-40 px each (some touching), deterministic."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(images):
        boxes = []
        for _ in range(count):
            w, h = rng.uniform(6, 40), rng.uniform(6, 40) * rng.choice([0.6, 1.0, 1.6])
            h = min(h, 60)
            x, y = rng.uniform(0, side - w), rng.uniform(0, side - h)
            boxes.append([round(x, 2), round(y, 2), round(x + w, 2), round(y + h, 2)])
        out.append((side, side, boxes))
    return out


def test_proposal_improves_small_objects_and_numbers_match_brute_force(run, workdir):
    images = small_object_set()
    write_coco(workdir, images)
    doc, result = report(run, workdir, write_config(workdir, [256], 256))
    boxes = [b for _, _, bs in images for b in bs]
    fg = np.float32(0.7)
    for table in ("current", "proposed"):
        anchors = reference_anchors(doc[table]["sizes"], doc[table]["aspect_ratios"], (256, 256))
        best = reference_best_ious(boxes, anchors)
        assert buckets(doc[table])["all"] == (len(boxes), int((best >= fg).sum()), int((best >= np.float32(0.5)).sum()),
                                              int((best < np.float32(0.3)).sum())), table
    now, then = buckets(doc["current"])["all"][1], buckets(doc["proposed"])["all"][1]
    assert doc["proposed"]["changed"] and then > now + 0.3 * len(boxes), (now, then)
    assert "mrcnn-config set run.json 'model.anchor.sizes=" in result.stdout
    assert doc["set_command"] in result.stdout
    # Sizes per level increase (the FPN's shape), one count per level.
    flat = [s for level in doc["proposed"]["sizes"] for s in level]
    assert flat == sorted(set(flat)) and len({len(level) for level in doc["proposed"]["sizes"]}) == 1
    # The histogram holds every box, and its positives are the tables'.
    hist = doc["histogram"]
    assert sum(hist["boxes"]) == len(boxes) and len(hist["edges"]) == len(hist["boxes"]) + 1
    assert sum(hist["positive_current"]) == now and sum(hist["positive_proposed"]) == then
    assert [q["q"] for q in doc["aspect_ratio_quantiles"]] == [0.05, 0.25, 0.5, 0.75, 0.95]
    # Deterministic: the same report again.
    again, _ = report(run, workdir, "run.json")
    assert again == doc


def test_proposal_improves_the_small_shapes_set(run, workdir):
    """mrcnn-train --make-shapes --small (7-39 px shapes on 2048 px images) at native resolution."""
    result = run("mrcnn-train", "--make-shapes", "small", "--small", "--shapes-train", "3", "--shapes-val", "1")
    assert result.returncode == 0, result.stderr
    cfg = {"model": {"num_classes": 4, "min_size": [2048], "max_size": 2048},
           "data": {"train": {"format": "coco", "images": "small/train", "annotations": "small/train.json"}}}
    (workdir / "small.json").write_text(json.dumps(cfg))
    for extra in ((), ("--keep-count",)):
        doc, _ = report(run, workdir, "small.json", *extra)
        boxes, now = buckets(doc["current"])["all"][:2]
        then = buckets(doc["proposed"])["all"][1]
        assert doc["proposed"]["changed"] and then >= now + 0.25 * boxes, (extra, now, then, boxes)
        small_now, small_then = (buckets(doc[t])["COCO small (area < 32^2)"][1] for t in ("current", "proposed"))
        assert small_then > small_now
        # No box needs P6: it keeps its configured size (objects larger than these keep their anchors).
        assert doc["proposed"]["sizes"][4][0] == 512


def test_search_on_a_subsample_keeps_full_tables(run, workdir):
    write_coco(workdir, small_object_set(images=3))
    doc, result = report(run, workdir, write_config(workdir, [256], 256), "--max-search-boxes", "100")
    assert doc["searched_boxes"] == 100 and doc["measured_boxes"] == 180
    assert buckets(doc["current"])["all"][0] == 180
    assert "searching on 100 evenly spaced boxes of 180" in result.stderr


def test_keep_count_and_the_rpn_warning(run, workdir):
    write_coco(workdir, small_object_set())
    doc, result = report(run, workdir, write_config(workdir, [256], 256), "--keep-count")
    assert doc["proposed"]["anchors_per_location"] == 3
    assert "rpn.head.cls_logits" not in result.stderr
    # Without it, this set gains enough from a second size per level to change the count.
    doc, result = report(run, workdir, "run.json")
    assert doc["proposed"]["anchors_per_location"] == 6 and [len(level) for level in doc["proposed"]["sizes"]] == [2] * 5
    assert "6 anchors per location instead of 3" in result.stderr
    assert "rpn.head.cls_logits, rpn.head.bbox_pred" in result.stderr


def test_nothing_better_keeps_the_current_anchors(run, workdir):
    # Every box equals an anchor: nothing can do better than all positive.
    boxes = [[24, 24, 56, 56], [32, 32, 96, 96], [0, 0, 128, 128]]
    write_coco(workdir, [(128, 128, boxes)])
    doc, result = report(run, workdir, write_config(workdir, [128], 128, SQUARES), "--apply")
    assert doc["proposed"]["changed"] is False and doc["proposed"]["sizes"] == SQUARES["sizes"]
    assert doc["set_command"] is None
    assert "left as it is" in result.stderr
    assert json.loads((workdir / "run.json").read_text())["model"]["anchor"] == SQUARES


def test_apply_writes_a_config_that_validates_and_trains(run, workdir, make_shapes):
    make_shapes("shapes", train=4, val=2)
    config = write_tiny_shapes_config(workdir, {"steps": 2, "batch_size": 2, "checkpoint_period": 100,
                                                "eval_period": 100, "log_period": 1,
                                                "lr_schedule": {"type": "cosine", "warmup_steps": 1,
                                                                "milestones": []}})
    cfg = json.loads((workdir / config).read_text())
    cfg["model"]["anchor"] = {"sizes": [[100], [120], [140], [160], [180]], "aspect_ratios": [0.5, 1.0, 2.0]}
    (workdir / config).write_text(json.dumps(cfg))
    doc, _ = report(run, workdir, config, "--apply", "--keep-count")
    assert doc["proposed"]["changed"]
    written = json.loads((workdir / config).read_text())
    assert written["model"]["anchor"] == {"sizes": doc["proposed"]["sizes"],
                                          "aspect_ratios": doc["proposed"]["aspect_ratios"]}
    assert written["train"] == cfg["train"]  # the rest as it was
    assert run("mrcnn-config", "validate", config).returncode == 0
    result = run("mrcnn-train", "--config", config, "--output-dir", "out", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert (workdir / "out" / "model_final.safetensors").exists()


def test_the_printed_set_line_runs_as_pasted(run, workdir):
    import shlex

    write_coco(workdir, small_object_set(images=2))
    write_config(workdir, [256], 256, name="my 'run'.json")
    doc, result = report(run, workdir, "my 'run'.json", "--keep-count")
    assert doc["set_command"] in result.stdout
    words = shlex.split(doc["set_command"])
    assert words[:3] == ["mrcnn-config", "set", "my 'run'.json"]
    assert run(*words).returncode == 0
    written = json.loads((workdir / "my 'run'.json").read_text())["model"]["anchor"]
    assert written == {"sizes": doc["proposed"]["sizes"], "aspect_ratios": doc["proposed"]["aspect_ratios"]}


def test_output_config_leaves_the_input(run, workdir):
    write_coco(workdir, small_object_set(images=2))
    before = (workdir / write_config(workdir, [256], 256)).read_text()
    doc, _ = report(run, workdir, "run.json", "-o", "fitted.json")
    assert (workdir / "run.json").read_text() == before
    fitted = json.loads((workdir / "fitted.json").read_text())
    assert fitted["model"]["anchor"]["sizes"] == doc["proposed"]["sizes"]


def test_fine_tuning_into_another_anchor_count_reinitialises_the_rpn_predictors(run, workdir, make_shapes):
    make_shapes("shapes", train=4, val=2)
    train = {"steps": 1, "batch_size": 2, "checkpoint_period": 100, "eval_period": 100, "log_period": 1,
             "lr_schedule": {"type": "cosine", "warmup_steps": 1, "milestones": []}}
    config = write_tiny_shapes_config(workdir, train)
    assert run("mrcnn-train", "--config", config, "--output-dir", "three", "--device", "cpu").returncode == 0
    cfg = json.loads((workdir / config).read_text())
    cfg["model"]["anchor"]["aspect_ratios"] = [0.5, 1.0, 2.0, 4.0]  # 4 anchors per location
    (workdir / "four.json").write_text(json.dumps(cfg))
    result = run("mrcnn-train", "--config", "four.json", "--output-dir", "four", "--device", "cpu",
                 "--init-weights", "three/model_final.safetensors")
    assert result.returncode == 0, result.stderr
    reinitialised = {l.split("re-initialised ")[1].split(":")[0] for l in result.stderr.splitlines()
                     if "re-initialised " in l}
    assert reinitialised == {"rpn.head.cls_logits.weight", "rpn.head.cls_logits.bias", "rpn.head.bbox_pred.weight",
                             "rpn.head.bbox_pred.bias"}
    assert "start fresh" in result.stderr


def test_visualize_draws_the_report(run, workdir):
    from PIL import Image

    write_coco(workdir, small_object_set(images=2))
    report(run, workdir, write_config(workdir, [256], 256))
    result = run("mrcnn-visualize", "anchors", "report.json", "-o", "anchors.png")
    assert result.returncode == 0, result.stderr
    image = Image.open(workdir / "anchors.png")
    assert image.size == (960, 520) and image.mode == "RGB"
    pixels = np.asarray(image)
    # The proposed anchors' colour (31, 119, 180) and the current ones' (255, 127, 14) are drawn.
    assert (pixels == [31, 119, 180]).all(-1).sum() > 100 and (pixels == [255, 127, 14]).all(-1).sum() > 100


def corrupt(doc, path, value):
    keys = path.split(".")
    target = doc
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    last = keys[-1]
    if value is KeyError:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize("path,value,fragment", [
    ("histogram.edges", [4, 2, 8], "histogram.edges: expected increasing numbers"),
    ("histogram.edges", "wide", "histogram.edges: expected an array"),
    ("histogram.boxes", [1, 2], "histogram.boxes: expected an array of"),
    ("histogram.positive_current.0", -3, "histogram.positive_current: expected a count"),
    ("histogram.edges.0", 1e300, "histogram.edges: expected a number"),
    ("current.sizes", [[1e30]], "current.sizes: expected a number"),
    ("proposed.sizes", [], "proposed.sizes: expected an array"),
    ("proposed", KeyError, "field 'proposed'"),
    ("fg_iou_thresh", "high", "fg_iou_thresh: expected a number"),
    ("proposed.changed", 1, "proposed.changed: expected true or false"),
    ("current.buckets.4.positive", 10 ** 9, "positives <= boxes"),
])
def test_visualize_refuses_bad_reports(run, workdir, path, value, fragment):
    write_coco(workdir, small_object_set(images=1))
    doc, _ = report(run, workdir, write_config(workdir, [256], 256))
    (workdir / "bad.json").write_text(json.dumps(corrupt(doc, path, value)))
    result = run("mrcnn-visualize", "anchors", "bad.json", "-o", "out.png", check_clean_error=False)
    assert_one_error(result, "mrcnn-visualize", "bad.json", fragment)
    assert not (workdir / "out.png").exists()


@pytest.mark.parametrize("text,fragment", [
    ("{", "bad.json:1:"), ("[1, 2]", "expected a JSON object"), ("[" * 5000, "bad.json"), ("", "bad.json")])
def test_visualize_refuses_malformed_json(run, workdir, text, fragment):
    (workdir / "bad.json").write_text(text)
    result = run("mrcnn-visualize", "anchors", "bad.json", "-o", "out.png", check_clean_error=False)
    assert_one_error(result, "mrcnn-visualize", fragment)


def test_config_errors(run, workdir):
    (workdir / "nodata.json").write_text(json.dumps({"model": {"num_classes": 2}}))
    result = run("mrcnn-config", "anchors", "nodata.json", check_clean_error=False)
    assert_one_error(result, "mrcnn-config", "nodata.json", "data.train.annotations is not set")
    write_config(workdir, [256], 256)  # train.json does not exist
    result = run("mrcnn-config", "anchors", "run.json", check_clean_error=False)
    assert_one_error(result, "mrcnn-config", "train.json")
    (workdir / "train.json").write_text("{not json")
    result = run("mrcnn-config", "anchors", "run.json", check_clean_error=False)
    assert_one_error(result, "mrcnn-config", "train.json")
    write_coco(workdir, [(128, 128, [])])
    result = run("mrcnn-config", "anchors", "run.json", check_clean_error=False)
    assert_one_error(result, "mrcnn-config", "no boxes")
    write_coco(workdir, [(1, 3000, [[0, 0, 100, 1]])])
    write_config(workdir, [64], 64)
    result = run("mrcnn-config", "anchors", "run.json", check_clean_error=False)
    assert_one_error(result, "mrcnn-config", "1.png", "too elongated")
    result = run("mrcnn-config", "anchors", "missing.json", check_clean_error=False)
    assert_one_error(result, "mrcnn-config", "missing.json")
    (workdir / "bad_model.json").write_text(json.dumps({"model": {"anchor": {"sizes": [[32]]}}}))
    result = run("mrcnn-config", "anchors", "bad_model.json", check_clean_error=False)
    assert result.returncode == 2 and "model.anchor.sizes" in result.stderr
