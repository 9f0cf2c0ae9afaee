"""mrcnn-train, run for real on a tiny generated shapes set: the shapes generator, a short run
with checkpoints and metrics, exact resume, and the bad inputs that must stop it before training."""
import json

import pytest

from mrcnn_testing import SOURCE_DIR


def tiny_config(workdir, **train):
    cfg = json.loads((SOURCE_DIR / "configs" / "shapes_tiny_cpu.json").read_text())
    cfg["model"]["min_size"] = [64]
    cfg["model"]["max_size"] = 64
    cfg["data"]["train"] = {"format": "coco", "images": "shapes/train", "annotations": "shapes/train.json"}
    cfg["data"]["val"] = {"format": "coco", "images": "shapes/val", "annotations": "shapes/val.json"}
    cfg["train"].update({"steps": 6, "batch_size": 2, "checkpoint_period": 3, "log_period": 1,
                         "lr_schedule": {"type": "cosine", "warmup_steps": 2, "milestones": []}})
    cfg["train"].update(train)
    (workdir / "tiny.json").write_text(json.dumps(cfg))
    return "tiny.json"


@pytest.fixture
def shapes(run, workdir):
    result = run("mrcnn-train", "--make-shapes", "shapes", "--shapes-train", "8", "--shapes-val", "2",
                 "--shapes-size", "64")
    assert result.returncode == 0, result.stderr
    return workdir / "shapes"


def read_metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_make_shapes_writes_coco(shapes):
    train = json.loads((shapes / "train.json").read_text())
    assert len(train["images"]) == 8 and train["annotations"]
    assert {c["name"] for c in train["categories"]} == {"square", "circle", "triangle"}
    assert all((shapes / "train" / im["file_name"]).exists() for im in train["images"])


def test_short_run_then_exact_resume(run, workdir, shapes):
    config = tiny_config(workdir)
    result = run("mrcnn-train", "--config", config, "--output-dir", "full", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    full = read_metrics(workdir / "full" / "metrics.jsonl")
    assert [m["step"] for m in full] == [1, 2, 3, 4, 5, 6]
    for m in full:
        assert {"loss", "lr", "loss_mask", "loss_objectness", "loss_classifier", "loss_box_reg", "loss_rpn_box_reg",
                "time", "data_time"} <= set(m)
    assert (workdir / "full" / "model_final.safetensors").exists()
    assert (workdir / "full" / "checkpoints" / "step_00000003.safetensors").exists()

    # Resume from the step-3 checkpoint: the same losses as the uninterrupted run.
    (workdir / "half" / "checkpoints").mkdir(parents=True)
    for f in (workdir / "full" / "checkpoints").glob("step_00000003*"):
        (workdir / "half" / "checkpoints" / f.name).write_bytes(f.read_bytes())
    (workdir / "half" / "checkpoints" / "latest.json").write_text('{"checkpoint": "step_00000003", "step": 3}')
    result = run("mrcnn-train", "--config", config, "--output-dir", "half", "--device", "cpu", "--resume")
    assert result.returncode == 0, result.stderr
    resumed = read_metrics(workdir / "half" / "metrics.jsonl")
    assert [m["step"] for m in resumed] == [4, 5, 6]
    for r in resumed:
        reference = next(m for m in full if m["step"] == r["step"])
        assert r["loss"] == pytest.approx(reference["loss"], abs=1e-5)

    # The finished run is not started again by accident.
    result = run("mrcnn-train", "--config", config, "--output-dir", "full", "--device", "cpu")
    assert result.returncode == 2 and "holds a run already" in result.stderr


def test_bad_inputs_stop_before_training(run, workdir, shapes):
    cfg = tiny_config(workdir)
    doc = json.loads((workdir / cfg).read_text())
    doc["data"]["train"]["annotations"] = "nowhere.json"
    (workdir / "missing.json").write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", "missing.json", "--output-dir", "r1", "--device", "cpu")
    assert result.returncode == 2 and "data.train.annotations: 'nowhere.json' does not exist" in result.stderr

    (workdir / "labels.pbtxt").write_text("item { id: 1 name: 'a' }\nitem { id: 7 name: 'b' }\n")
    doc = json.loads((workdir / cfg).read_text())
    doc["data"]["train"]["label_map"] = "labels.pbtxt"
    (workdir / "labels.json").write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", "labels.json", "--output-dir", "r2", "--device", "cpu")
    assert result.returncode == 2 and "labels.pbtxt: class id 7 (b) does not fit model.num_classes = 4" in result.stderr

    result = run("mrcnn-train", "--config", cfg, "--output-dir", "r3", "--device", "cpu", "--resume")
    assert result.returncode == 2 and "no checkpoint to resume from" in result.stderr
    assert not (workdir / "r1").exists() and not (workdir / "r2").exists()
