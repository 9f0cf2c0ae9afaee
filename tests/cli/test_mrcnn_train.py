"""mrcnn-train, run for real on a tiny generated shapes set: the shapes generator, a short run
with checkpoints, validation and metrics, exact resume, stops by signal, NaN losses, kills in the
middle of a checkpoint, and the bad inputs that must stop it before training."""
import json
import signal
import subprocess
import time

import pytest

from mrcnn_testing import BIN_DIR, SOURCE_DIR, assert_one_error, write_tiny_shapes_config

OVERFIT_STEPS = 150


def tiny_config(workdir, **train):
    settings = {"steps": 6, "batch_size": 2, "checkpoint_period": 3, "log_period": 1,
                "lr_schedule": {"type": "cosine", "warmup_steps": 2, "milestones": []}}
    return write_tiny_shapes_config(workdir, {**settings, **train})


@pytest.fixture
def shapes(make_shapes):
    return make_shapes("shapes", train=8, val=2)


def read_metrics(path):
    """The per-step records (validation records, which carry "val", are left out)."""
    return [m for m in map(json.loads, path.read_text().splitlines()) if "loss" in m]


def read_validations(path):
    return [m for m in map(json.loads, path.read_text().splitlines()) if "val" in m]


def start_training(workdir, config, output_dir, *extra):
    return subprocess.Popen([str(BIN_DIR / "mrcnn-train"), "--config", config, "--output-dir", output_dir,
                             "--device", "cpu", *extra], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_steps(workdir, output_dir, steps, process, timeout=300):
    metrics = workdir / output_dir / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and len(read_metrics(metrics)) >= steps:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{output_dir}: fewer than {steps} steps in {timeout} s")


def test_make_shapes_writes_coco(shapes):
    train = json.loads((shapes / "train.json").read_text())
    assert len(train["images"]) == 8 and train["annotations"]
    assert {c["name"] for c in train["categories"]} == {"square", "circle", "triangle"}
    assert all((shapes / "train" / im["file_name"]).exists() for im in train["images"])


def test_make_shapes_small_writes_many_small_shapes(run, workdir):
    result = run("mrcnn-train", "--make-shapes", "small", "--small", "--shapes-train", "2", "--shapes-val", "1",
                 "--shapes-size", "512")
    assert result.returncode == 0, result.stderr
    for split, count in (("train", 2), ("val", 1)):
        coco = json.loads((workdir / "small" / f"{split}.json").read_text())
        assert [(im["width"], im["height"]) for im in coco["images"]] == [(512, 512)] * count
        # 50-200 shapes per 2048x2048 image is 4-12 per 512x512 one, 7-39 px a side.
        per_image = [sum(a["image_id"] == im["id"] for a in coco["annotations"]) for im in coco["images"]]
        assert all(4 <= n <= 12 for n in per_image), per_image
        assert all(7 <= a["bbox"][2] <= 39 and 7 <= a["bbox"][3] <= 39 for a in coco["annotations"])


def test_make_shapes_small_refuses_images_too_small_for_its_shapes(run):
    assert_one_error(run("mrcnn-train", "--make-shapes", "small", "--small", "--shapes-size", "64"), "mrcnn-train",
                     "at least 128 pixels a side", "not 64")
    assert run("mrcnn-train", "--small").returncode == 2  # only with --make-shapes


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
    # Validation at the end (eval_period is longer than the run): COCO metrics of the val split,
    # and the best checkpoint beside the periodic ones.
    [val] = read_validations(workdir / "full" / "metrics.jsonl")
    assert val["step"] == 6 and val["val"]["images"] == 2
    assert set(val["val"]["bbox"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"}
    assert 0 <= val["val"]["segm"]["AP"] <= 1
    best = json.loads((workdir / "full" / "checkpoints" / "best.json").read_text())
    assert best["step"] == 6 and best["value"] == val["val"]["segm"]["AP"]
    assert (workdir / "full" / "checkpoints" / "best.safetensors").exists()
    log = (workdir / "full" / "train.log").read_text()
    assert "training 6 steps" in log and "val bbox AP" in log

    # The self-contained model infers alone, as the weights with their config do.
    result = run("mrcnn-infer", "--model", "full/model.safetensors", "-i", "shapes/val", "-o", "alone.json",
                 "--score-threshold", "0", "--device", "cpu", "--overlay-dir", "overlays")
    assert result.returncode == 0, result.stderr
    result = run("mrcnn-infer", "--config", config, "--weights", "full/model_final.safetensors", "-i", "shapes/val",
                 "-o", "paired.json", "--score-threshold", "0", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads((workdir / "alone.json").read_text()) == json.loads((workdir / "paired.json").read_text())
    assert len(list((workdir / "overlays").iterdir())) == 2
    result = run("mrcnn-infer", "--model", "full/model_final.safetensors", "-i", "shapes/val", "-o", "x.json")
    assert result.returncode == 2 and "not a self-contained mrcnn model" in result.stderr

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


def test_sigterm_checkpoints_and_exits_zero_then_resume_finishes(workdir, run, shapes):
    config = tiny_config(workdir, steps=400, checkpoint_period=1000, eval_period=1000)
    process = start_training(workdir, config, "run")
    wait_for_steps(workdir, "run", 2, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "--resume" in stderr and "stopped at step" in stderr
    latest = json.loads((workdir / "run" / "checkpoints" / "latest.json").read_text())
    assert 2 <= latest["step"] < 400
    assert (workdir / "run" / "checkpoints" / (latest["checkpoint"] + ".safetensors")).exists()
    assert not (workdir / "run" / "model_final.safetensors").exists()
    # The run continues from there to its end.
    (workdir / "short.json").write_text(json.dumps({**json.loads((workdir / config).read_text()),
                                                    "train": {**json.loads((workdir / config).read_text())["train"],
                                                              "steps": latest["step"] + 2}}))
    result = run("mrcnn-train", "--config", "short.json", "--output-dir", "run", "--device", "cpu", "--resume")
    assert result.returncode == 0, result.stderr
    steps = [m["step"] for m in read_metrics(workdir / "run" / "metrics.jsonl")]
    assert steps[-2:] == [latest["step"] + 1, latest["step"] + 2]
    assert (workdir / "run" / "model_final.safetensors").exists()


def test_nan_loss_stops_with_the_step_and_term_and_keeps_the_checkpoint(run, workdir, shapes):
    # SGD at an absurd rate diverges within a few steps.
    config = tiny_config(workdir, steps=30, checkpoint_period=1,
                         optimizer={"type": "sgd", "lr": 1e12, "momentum": 0.9, "weight_decay": 0.0},
                         lr_schedule={"type": "constant", "warmup_steps": 0, "milestones": []})
    result = run("mrcnn-train", "--config", config, "--output-dir", "run", "--device", "cpu")
    assert result.returncode == 2, result.stderr
    line = next(l for l in result.stderr.splitlines() if "error" in l)
    assert "step " in line and "loss_" in line and ("nan" in line or "inf" in line), line
    assert "last checkpoint" in line
    latest = json.loads((workdir / "run" / "checkpoints" / "latest.json").read_text())
    failed_step = int(line.split("step ")[1].split(":")[0])
    assert latest["step"] == failed_step  # the last completed step was saved; the failing one was not
    assert not (workdir / "run" / "model_final.safetensors").exists()


def test_a_kill_during_checkpointing_leaves_a_resumable_run(run, workdir, shapes):
    # A checkpoint every step and kills at moments spread over the run: whatever the moment,
    # latest.json names a complete checkpoint and --resume continues from it.
    config = tiny_config(workdir, steps=1000, checkpoint_period=1, eval_period=1000)
    for attempt, delay in enumerate([0.0, 0.013, 0.029, 0.047, 0.071]):
        process = start_training(workdir, config, "run", *(["--resume"] if attempt else []))
        wait_for_steps(workdir, "run", 2 + attempt, process)
        time.sleep(delay)
        process.kill()
        process.wait()
        latest = json.loads((workdir / "run" / "checkpoints" / "latest.json").read_text())
        for suffix in (".safetensors", ".optim.safetensors", ".json"):
            assert (workdir / "run" / "checkpoints" / (latest["checkpoint"] + suffix)).exists()
    doc = json.loads((workdir / config).read_text())
    doc["train"]["steps"] = latest["step"] + 1
    (workdir / "finish.json").write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", "finish.json", "--output-dir", "run", "--device", "cpu", "--resume")
    assert result.returncode == 0, result.stderr
    assert f"resuming run at step {latest['step']}" in result.stderr
    leftovers = [p.name for p in (workdir / "run" / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers


def test_init_weights_of_another_architecture_is_refused(run, workdir, shapes, small_model):
    weights, _ = small_model  # a torchvision ResNet-18 model with 3 classes and default heads
    doc = json.loads((workdir / tiny_config(workdir, steps=2)).read_text())
    doc["model"] = {"backbone": "resnet34", "num_classes": 4, "min_size": [64], "max_size": 64}
    (workdir / "r34.json").write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", "r34.json", "--output-dir", "r34", "--device", "cpu",
                 "--init-weights", weights)
    assert result.returncode == 2
    assert "weights of another architecture" in result.stderr and "resnet34" in result.stderr
    assert not (workdir / "r34" / "checkpoints").exists()

    # The same file into a ResNet-18 with 4 classes: only the class predictors start fresh.
    doc["model"]["backbone"] = "resnet18"
    (workdir / "r18.json").write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", "r18.json", "--output-dir", "ft", "--device", "cpu",
                 "--init-weights", weights)
    assert result.returncode == 0, result.stderr
    reinitialised = {l.split("re-initialised ")[1].split(":")[0] for l in result.stderr.splitlines()
                     if "re-initialised " in l}
    assert reinitialised == {"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
                             "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias",
                             "roi_heads.mask_predictor.mask_fcn_logits.weight",
                             "roi_heads.mask_predictor.mask_fcn_logits.bias"}


def test_time_limit_validates_checkpoints_and_stops(run, workdir, shapes):
    config = tiny_config(workdir, steps=400, checkpoint_period=1000, eval_period=1000)
    result = run("mrcnn-train", "--config", config, "--output-dir", "run", "--device", "cpu", "--time-limit", "0.03")
    assert result.returncode == 0, result.stderr
    assert "time limit" in result.stderr and "--resume" in result.stderr
    latest = json.loads((workdir / "run" / "checkpoints" / "latest.json").read_text())
    assert 1 <= latest["step"] < 400
    [val] = read_validations(workdir / "run" / "metrics.jsonl")
    assert val["step"] == latest["step"]
    result = run("mrcnn-train", "--config", config, "--output-dir", "run2", "--time-limit", "-1")
    assert result.returncode == 2


def test_overfits_a_handful_of_images(run, workdir, make_shapes):
    """The tiny preset learns four shapes images by heart within a couple of minutes on 2 cores:
    the total loss falls by at least half and mask AP50 on those images reaches 0.8."""
    make_shapes("few", train=4, val=1, size=128)
    cfg = json.loads((SOURCE_DIR / "configs" / "shapes_tiny_cpu.json").read_text())
    few = {"format": "coco", "images": "few/train", "annotations": "few/train.json"}
    cfg["data"].update({"train": few, "val": few, "augmentation": []})
    cfg["infer"]["precision"] = "fp32"  # the validation's AP50 bound was measured in fp32; same on every CPU
    cfg["train"].update({"steps": OVERFIT_STEPS, "batch_size": 2, "log_period": 1, "eval_period": OVERFIT_STEPS,
                         "checkpoint_period": OVERFIT_STEPS})
    (workdir / "overfit.json").write_text(json.dumps(cfg))
    result = run("mrcnn-train", "--config", "overfit.json", "--output-dir", "run", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    steps = read_metrics(workdir / "run" / "metrics.jsonl")
    first = sum(m["loss"] for m in steps[:5]) / 5
    last = sum(m["loss"] for m in steps[-5:]) / 5
    assert last <= 0.5 * first, (first, last)
    [val] = read_validations(workdir / "run" / "metrics.jsonl")
    assert val["val"]["segm"]["AP50"] >= 0.8, val


def test_tensorboard_events_hold_the_metrics_and_val_overlays(run, workdir, shapes):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(workdir, steps=4, eval_period=2)
    result = run("mrcnn-train", "--config", config, "--output-dir", "run", "--device", "cpu", "--tensorboard")
    assert result.returncode == 0, result.stderr
    events = EventAccumulator(str(workdir / "run" / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    metrics = read_metrics(workdir / "run" / "metrics.jsonl")
    for key in ("loss", "lr", "loss_mask", "loss_classifier", "time", "data_time", "max_rss_mb"):
        scalars = events.Scalars("train/" + key)
        assert [s.step for s in scalars] == [m["step"] for m in metrics]
        assert [s.value for s in scalars] == pytest.approx([m[key] for m in metrics], rel=1e-6)
    validations = read_validations(workdir / "run" / "metrics.jsonl")
    for key in ("bbox/AP", "bbox/AP50", "segm/AP", "segm/AR100"):
        scalars = events.Scalars("val/" + key)
        assert [s.step for s in scalars] == [2, 4]
        iou_type, name = key.split("/")
        assert [s.value for s in scalars] == pytest.approx([v["val"][iou_type][name] for v in validations], abs=1e-6)
    assert {"val/image_0", "val/image_1"} <= set(tags["images"])
    for image_event in events.Images("val/image_0"):
        import io
        picture = Image.open(io.BytesIO(image_event.encoded_image_string))
        assert picture.size == (64, 64) == (image_event.width, image_event.height)
