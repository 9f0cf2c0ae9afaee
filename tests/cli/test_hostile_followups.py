"""Follow-ups of the hostile-input work (issue 17), through the real tools: configuration values
in int64 range but absurd for their key, a model too large for the memory, data.max_image_pixels
and too-elongated training images, a self-contained model's embedded config and label map,
metrics.jsonl records beyond the JSON limits, and the test helpers' paths. Each bad input ends in
exit 2 with one error line naming the file and key; every run has a timeout, so a hang fails."""
import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import mrcnn_testing
from mrcnn_testing import SMALL_MODEL_CONFIG, SOURCE_DIR, assert_one_error, write_safetensors

TIMEOUT = 60
run_tool = functools.partial(mrcnn_testing.run_tool, timeout=TIMEOUT)  # training runs: more than the default
DEEP = "[" * 100000 + "]" * 100000


def tiny_training_config(workdir, name="tiny.json", **sections):
    """The tiny CPU preset on workdir/shapes (64-pixel images), 1 step; sections update it."""
    cfg = json.loads((SOURCE_DIR / "configs" / "shapes_tiny_cpu.json").read_text())
    cfg["model"].update({"min_size": [64], "max_size": 64})
    cfg["data"]["train"] = {"format": "coco", "images": "shapes/train", "annotations": "shapes/train.json"}
    cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
    cfg["train"].update({"steps": 1, "batch_size": 2, "log_period": 1,
                         "lr_schedule": {"type": "constant", "warmup_steps": 0, "milestones": []}})
    for section, values in sections.items():
        cfg[section].update(values)
    (workdir / name).write_text(json.dumps(cfg))
    return name


# --- 1. Sizes, counts and periods beyond their key's limit ------------------------------------

LIMITED = [("train", "batch_size", 5000000000, 4096), ("train", "batch_size", 2 ** 31, 4096),
           ("model", "fpn_channels", 10 ** 15, 16384), ("train", "dist_timeout", 1e300, 10000000),
           ("train", "steps", 2 ** 62, 1000000000), ("model", "max_size", 2 ** 40, 65536),
           ("data", "max_image_pixels", 2 ** 62, 4294967296)]


@pytest.mark.parametrize("section, key, value, limit", LIMITED)
def test_values_beyond_the_keys_limit(workdir, section, key, value, limit):
    (workdir / "c.json").write_text(json.dumps({section: {key: value}}))
    expected = f"c.json: {section}.{key}: expected at most {limit} (the largest supported), found "
    for command in (["mrcnn-config", "validate", "c.json"], ["mrcnn-train", "--config", "c.json", "-o", "run"],
                    ["mrcnn-infer", "-c", "c.json", "-w", "w.pth", "-i", "x.png", "-o", "out.json"],
                    ["mrcnn-eval", "-c", "c.json", "-w", "w.pth"]):
        line = assert_one_error(run_tool(workdir, *command), command[0], expected)
        assert "-2147483648" not in line
    assert not (workdir / "run").exists()


def test_limit_on_the_command_line_and_in_lists(workdir):
    (workdir / "c.json").write_text("{}")
    assert_one_error(run_tool(workdir, "mrcnn-config", "set", "c.json", "train.batch_size=5000000000"), "mrcnn-config",
                     "train.batch_size: expected at most 4096")
    assert_one_error(run_tool(workdir, "mrcnn-config", "set", "c.json", "model.min_size=[800, 100000]"),
                     "mrcnn-config", "model.min_size: expected at most 65536", "found 100000")
    assert json.loads((workdir / "c.json").read_text()) == {}


def test_keys_list_their_limits(workdir):
    result = run_tool(workdir, "mrcnn-config", "keys")
    assert result.returncode == 0, result.stderr
    assert "expects an integer >= 1, at most 4096" in result.stdout
    assert "data.max_image_pixels = 178956970" in result.stdout


def test_nproc_batch_check_sees_the_whole_value(workdir):
    (workdir / "c.json").write_text(json.dumps({"train": {"batch_size": 2 ** 32 + 1}}))
    assert_one_error(run_tool(workdir, "mrcnn-train", "-c", "c.json", "-o", "run", "--nproc", "2"), "mrcnn-train",
                     "train.batch_size: expected at most 4096", str(2 ** 32 + 1))


# --- 2. A model too large for the memory ------------------------------------------------------

@pytest.fixture
def shapes(make_shapes):
    return make_shapes("shapes", train=2, val=1)


def test_out_of_memory_building_the_model_is_an_error(workdir, shapes):
    # 16384 FPN channels: one 3x3 convolution alone is 9.7 GB, beyond the 8 GB address space.
    config = tiny_training_config(workdir, model={"fpn_channels": 16384})
    result = run_tool(workdir, "mrcnn-train", "-c", config, "-o", "run", "--device", "cpu", address_space=8 << 30)
    assert_one_error(result, "mrcnn-train", "out of memory building the model", "model.fpn_channels=16384",
                     "train.batch_size=2")


# --- 3. data.max_image_pixels and too-elongated training images --------------------------------

def add_training_image(workdir, name, height, width):
    """Adds an image with one instance to shapes/train.json."""
    pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(workdir / "shapes" / "train" / name)
    coco = json.loads((workdir / "shapes" / "train.json").read_text())
    image_id = max(im["id"] for im in coco["images"]) + 1
    coco["images"].append({"id": image_id, "file_name": name, "height": height, "width": width})
    w, h = min(width, 20), min(height, 20)
    coco["annotations"].append({"id": 10 ** 6, "image_id": image_id, "category_id": coco["categories"][0]["id"],
                                "bbox": [0, 0, w, h], "area": w * h, "iscrowd": 0,
                                "segmentation": [[0, 0, w, 0, w, h, 0, h]]})
    (workdir / "shapes" / "train.json").write_text(json.dumps(coco))


def test_max_image_pixels_refuses_a_training_image_by_name(workdir, shapes):
    add_training_image(workdir, "big.png", 100, 120)  # 12000 pixels; the shapes are 64 x 64 = 4096
    config = tiny_training_config(workdir, data={"max_image_pixels": 10000, "on_invalid": "fail"},
                                  train={"batch_size": 3})
    result = run_tool(workdir, "mrcnn-train", "-c", config, "-o", "run", "--device", "cpu")
    assert_one_error(result, "mrcnn-train", "big.png", "120x100", "10000", "data.max_image_pixels")


def test_max_image_pixels_with_skip_trains_on_the_rest(workdir, shapes):
    add_training_image(workdir, "big.png", 100, 120)
    config = tiny_training_config(workdir, data={"max_image_pixels": 10000, "on_invalid": "skip"},
                                  train={"batch_size": 3})
    result = run_tool(workdir, "mrcnn-train", "-c", config, "-o", "run", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "big.png" in result.stderr and "data.max_image_pixels" in result.stderr
    assert (workdir / "run" / "model.safetensors").exists()


def test_too_elongated_training_image_is_named(workdir, shapes):
    # min_size 64 within max_size 64: a 4 x 400 image would be resized to 0 x 64.
    add_training_image(workdir, "thin.png", 4, 400)
    config = tiny_training_config(workdir, data={"on_invalid": "fail"}, train={"batch_size": 3})
    result = run_tool(workdir, "mrcnn-train", "-c", config, "-o", "run", "--device", "cpu")
    assert_one_error(result, "mrcnn-train", "thin.png", "too elongated", "data.on_invalid is fail")
    assert "Input and output sizes" not in result.stderr


# --- 4. A self-contained model's embedded config and label map ---------------------------------

def model_file(workdir, config=None, label_map=None):
    import torch

    metadata = {"format": "mrcnn model", "config": json.dumps(SMALL_MODEL_CONFIG) if config is None else config}
    if label_map is not None:
        metadata["label_map"] = label_map
    write_safetensors(workdir / "m.safetensors", {"x": torch.zeros(1)}, metadata)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(workdir / "x.png")
    return "m.safetensors"


@pytest.mark.parametrize("label_map, needle", [
    ('{"abc": "cat"}', "key 'abc': expected a class id"),
    ('{"1": 5}', "class 1: expected a name"),
    ('{"99999999999999999999": "cat"}', "expected a class id"),
    ('{"3000000000": "cat"}', "out of range"),
    ('{"0": "cat"}', "id 0 is reserved for the background"),
    ('[{"id": "1", "name": "cat"}]', "item 0: expected"),
    ('"cat"', 'expected a JSON object'),
    ("[1, 2]", "item 0: expected"),
    ('{"1": "a\\nb", "x\\ny": "c"}', "expected a class id"),
    ('{"1": ' + "[" * 1000, "nested deeper than 256"),
    ('{"1": 1e400}', "number out of range"),
])
def test_hostile_label_map_in_a_model_file(workdir, label_map, needle):
    model = model_file(workdir, label_map=label_map)
    result = run_tool(workdir, "mrcnn-infer", "--model", model, "-i", "x.png", "-o", "out.json")
    assert_one_error(result, "mrcnn-infer", "m.safetensors: embedded label_map", needle)
    assert not (workdir / "out.json").exists()


@pytest.mark.parametrize("config, needle", [
    ('{"model": {"num_classes": "x"}}', "model.num_classes: expected an integer >= 2"),
    ('{"modle": {}}', "modle: unknown key"),
    ("[]", "expected a JSON object"),
    ('{"train": {"batch_size": 5000000000}}', "train.batch_size: expected at most 4096"),
    ('{"infer": {"device": 7}}', "infer.device: expected a device"),
    ("[" * 1000, "nested deeper than 256"),
])
def test_hostile_embedded_config_in_a_model_file(workdir, config, needle):
    model = model_file(workdir, config=config)
    result = run_tool(workdir, "mrcnn-infer", "--model", model, "-i", "x.png", "-o", "out.json")
    assert_one_error(result, "mrcnn-infer", "m.safetensors: embedded config", needle)


# --- 5. metrics.jsonl records beyond the JSON limits -------------------------------------------

def test_deep_metrics_record_is_skipped_with_its_line(workdir):
    lines = [json.dumps({"step": 1, "loss": 1.0, "lr": 0.01}), DEEP, json.dumps({"step": 2, "loss": 0.5, "lr": 0.01}),
             '{"step": 3, "loss": 1e400}']
    (workdir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    result = run_tool(workdir, "mrcnn-visualize", "curves", "--metrics", "metrics.jsonl", "-o", "curves.png")
    assert result.returncode == 0, result.stderr
    assert "metrics.jsonl:2:257: JSON nested deeper than 256 levels" in result.stderr
    assert (workdir / "curves.png").stat().st_size > 0


def test_only_hostile_metrics_records_is_one_error(workdir):
    (workdir / "metrics.jsonl").write_text(DEEP + "\n" + '{"step": 1e400}\n')
    result = run_tool(workdir, "mrcnn-visualize", "curves", "--metrics", "metrics.jsonl", "-o", "curves.png")
    assert_one_error(result, "mrcnn-visualize", "metrics.jsonl: no metrics records")
    assert "metrics.jsonl:1:257: JSON nested deeper" in result.stderr
    assert not (workdir / "curves.png").exists()


# --- 6. The test helpers resolve relative tool folders -----------------------------------------

def test_relative_bin_dir_is_made_absolute(tmp_path):
    env = dict(os.environ, MRCNN_BIN_DIR="build/tools", MRCNN_TEST_BIN_DIR="build/tests",
               PYTHONPATH=str(SOURCE_DIR / "tests"))
    out = subprocess.run([sys.executable, "-c", "import mrcnn_testing as t; print(t.BIN_DIR); print(t.TEST_BIN_DIR)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True)
    bin_dir, test_bin_dir = out.stdout.split()
    assert bin_dir == str(tmp_path.resolve() / "build" / "tools")
    assert test_bin_dir == str(tmp_path.resolve() / "build" / "tests")


@pytest.mark.parametrize("tool, args", [
    ("mrcnn-infer", ["--batch-size", "0"]), ("mrcnn-infer", ["--batch-size", "99999999999"]),
    ("mrcnn-infer", ["--threads", "0"]), ("mrcnn-infer", ["--threads", "-3"]),
    ("mrcnn-train", ["--time-limit", "0"]), ("mrcnn-train", ["--time-limit", "1e300"]),
    ("mrcnn-eval", ["--threads", "-1"]), ("mrcnn-eval", ["--threads", "100000000000"]),
    ("mrcnn-visualize", ["detections", "--images", "x", "--results", "r.json", "-o", "o", "--max-boxes", "0"]),
    ("mrcnn-visualize", ["grid", "--images", "x", "-o", "o.png", "--max-images", "-2"]),
])
def test_numeric_flags_outside_their_range(tmp_path, tool, args):
    """Each numeric flag names its range in a short line (CLI11's PositiveNumber printed 300 digits)."""
    flag = next(a for a in args if a.startswith("--max-b") or a.startswith("--max-i") or a in
                ("--batch-size", "--threads", "--time-limit"))
    line = assert_one_error(run_tool(tmp_path, tool, *args), tool, flag)
    assert len(line) < 200, line
