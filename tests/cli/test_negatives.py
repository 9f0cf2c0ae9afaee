"""Images without objects (negatives): every format keeps them by default and counts them in the
reader's summary (COCO images without annotations, all-background mask PNGs, TFRecords with zero
objects, YOLO images without a label file); data.keep_empty_images false leaves them out; training
runs on them with finite losses (an all-empty batch: RPN and box losses on background only, mask
loss 0)."""
import json
import math
import shutil

import pytest

from mrcnn_testing import write_mask_pngs, write_records, write_tiny_shapes_config

np = pytest.importorskip("numpy")


def add_empty_images(folder, name, count):
    """count blank images without annotations added to folder/name.json (and its image folder)."""
    from PIL import Image

    doc = json.loads((folder / f"{name}.json").read_text())
    first = max(i["id"] for i in doc["images"]) + 1
    for k in range(count):
        file_name = f"empty{k}.png"
        Image.new("RGB", (64, 64), (k * 20 % 255, 40, 40)).save(folder / name / file_name)
        doc["images"].append({"id": first + k, "file_name": file_name, "width": 64, "height": 64})
    (folder / f"{name}.json").write_text(json.dumps(doc))
    return len(doc["annotations"])


def config(workdir, steps=3, **data):
    name = write_tiny_shapes_config(workdir, {"steps": steps, "batch_size": 2, "log_period": 1,
                                              "checkpoint_period": 1000, "eval_period": 1000,
                                              "lr_schedule": {"type": "constant", "warmup_steps": 0,
                                                              "milestones": []}})
    cfg = json.loads((workdir / name).read_text())
    cfg["data"].update(data)
    cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
    (workdir / "neg.json").write_text(json.dumps(cfg))
    return "neg.json"


def summary_line(stderr, source):
    return next(line for line in stderr.splitlines() if f"{source}: " in line and " images, " in line)


def test_coco_images_without_annotations_are_counted_kept_or_left_out(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=4, val=1)
    instances = add_empty_images(shapes, "train", 6)
    result = run("mrcnn-config", "export-coco", config(workdir), "-o", "all.json")
    assert result.returncode == 0, result.stderr
    assert f"10 images, {instances} instances used, 6 without objects" in summary_line(result.stderr, "train.json")
    assert len(json.loads((workdir / "all.json").read_text())["images"]) == 10
    result = run("mrcnn-config", "export-coco", config(workdir, keep_empty_images=False), "-o", "kept.json")
    assert "4 images, " in result.stderr and "6 without objects left out" in result.stderr
    assert len(json.loads((workdir / "kept.json").read_text())["images"]) == 4


def test_a_set_without_empty_images_keeps_its_summary(run, workdir, make_shapes):
    make_shapes("shapes", train=4, val=1)
    result = run("mrcnn-config", "export-coco", config(workdir), "-o", "all.json")
    assert "without objects" not in result.stderr


def test_all_background_mask_pngs_and_empty_records_count(run, workdir):
    pytest.importorskip("tfrecord")

    images = [(40, 50, [(5, 5, 20, 20)]), (40, 50, [(10, 10, 30, 25)])]
    write_mask_pngs(workdir, images)
    for k in (3, 4):  # all-background masks
        shutil.copy(workdir / "png_images" / "1.png", workdir / "png_images" / f"{k}.png")
        (workdir / "png_masks" / f"{k}.png").write_bytes((workdir / "png_masks" / "1.png").read_bytes())
        from PIL import Image
        Image.fromarray(np.zeros((40, 50), np.uint8)).save(workdir / "png_masks" / f"{k}.png")
    write_records(workdir / "train.record", images + [(40, 50, [])] * 3)
    sets = {"mask_png": ({"format": "mask_png", "images": "png_images", "annotations": "png_masks"}, 4, 2),
            "tfrecord": ({"format": "tfrecord", "images": "", "annotations": "train.record"}, 5, 3)}
    for name, (train_set, count, empty) in sets.items():
        result = run("mrcnn-config", "export-coco", config(workdir, train=train_set), "-o", f"{name}.json")
        assert result.returncode == 0, result.stderr
        assert f"{count} images, 2 instances used, {empty} without objects" in result.stderr, name


def read_steps(path):
    return [m for m in map(json.loads, path.read_text().splitlines()) if "loss" in m]


def test_training_on_many_empty_images_has_finite_losses(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=4, val=1)
    add_empty_images(shapes, "train", 12)
    result = run("mrcnn-train", "--config", config(workdir, steps=4), "--output-dir", "run")
    assert result.returncode == 0, result.stderr
    assert "12 without objects" in result.stderr
    steps = read_steps(workdir / "run" / "metrics.jsonl")
    assert len(steps) == 4 and all(math.isfinite(s["loss"]) for s in steps)


def test_an_all_empty_batch_trains_on_background_with_mask_loss_0(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=2, val=1)
    add_empty_images(shapes, "train", 4)
    doc = json.loads((shapes / "train.json").read_text())
    doc["annotations"] = []
    (shapes / "train.json").write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", config(workdir, steps=3), "--output-dir", "run")
    assert result.returncode == 0, result.stderr
    steps = read_steps(workdir / "run" / "metrics.jsonl")
    assert len(steps) == 3
    for s in steps:
        assert math.isfinite(s["loss"]) and s["loss"] > 0
        assert s["loss_mask"] == 0 and s["loss_objectness"] > 0 and s["loss_classifier"] > 0
