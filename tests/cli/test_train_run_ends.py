"""However mrcnn-train ends (its last step, --time-limit, SIGTERM), it leaves RUN/model.safetensors
with the last weights and RUN/checkpoints/best.safetensors with the best validated ones, both
self-contained models that mrcnn-infer --model runs alone."""
import json
import signal
import subprocess
import time

import numpy as np
import pytest

from mrcnn_testing import BIN_DIR, SOURCE_DIR, read_safetensors, read_safetensors_metadata, write_tiny_shapes_config


def tiny_config(workdir, **train):
    """The tiny shapes model at 64 pixels, as the other training tests use it."""
    settings = {"steps": 400, "batch_size": 2, "checkpoint_period": 1000, "eval_period": 1000, "log_period": 1,
                "lr_schedule": {"type": "cosine", "warmup_steps": 2, "milestones": []}}
    label_map = {"label_map": str(SOURCE_DIR / "configs" / "label_maps" / "shapes.pbtxt")}
    return write_tiny_shapes_config(workdir, {**settings, **train}, label_map)


@pytest.fixture
def shapes(make_shapes):
    return make_shapes("shapes", train=8, val=2)


def assert_model_runs(run, workdir, model, output):
    """A self-contained model: its metadata, and mrcnn-infer --model runs it to a results file."""
    meta = read_safetensors_metadata(workdir / model)
    assert meta["format"] == "mrcnn model" and "config" in meta and "square" in meta["label_map"], meta
    result = run("mrcnn-infer", "--model", model, "-i", "shapes/val", "-o", output, "--device", "cpu",
                 "--score-threshold", "0")
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads((workdir / output).read_text()), list)
    return int(meta["step"])


def assert_same_weights(a, b):
    left, right = read_safetensors(a), read_safetensors(b)
    assert left.keys() == right.keys()
    for name in left:
        assert np.array_equal(left[name], right[name]), name


def assert_last_and_best(run, workdir, stopped_at):
    """model.safetensors holds the weights of the stop's checkpoint; best.safetensors runs too."""
    checkpoints = workdir / "run" / "checkpoints"
    latest = json.loads((checkpoints / "latest.json").read_text())
    assert latest["step"] == stopped_at
    assert assert_model_runs(run, workdir, "run/model.safetensors", "last.json") == stopped_at
    assert_same_weights(workdir / "run" / "model.safetensors", checkpoints / (latest["checkpoint"] + ".safetensors"))
    best = json.loads((checkpoints / "best.json").read_text())
    assert assert_model_runs(run, workdir, "run/checkpoints/best.safetensors", "best.json") == best["step"]
    assert not (workdir / "run" / "model_final.safetensors").exists()  # only a finished run has it


def test_a_finished_run_leaves_both_models(run, workdir, shapes):
    config = tiny_config(workdir, steps=2)
    result = run("mrcnn-train", "--config", config, "--output-dir", "run", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert assert_model_runs(run, workdir, "run/model.safetensors", "last.json") == 2
    assert assert_model_runs(run, workdir, "run/checkpoints/best.safetensors", "best.json") == 2
    assert (workdir / "run" / "model_final.safetensors").exists()


def test_time_limit_leaves_the_last_and_the_best_model(run, workdir, shapes):
    config = tiny_config(workdir)
    result = run("mrcnn-train", "--config", config, "--output-dir", "run", "--device", "cpu", "--time-limit", "0.03")
    assert result.returncode == 0, result.stderr
    assert "time limit" in result.stderr
    stopped_at = int(result.stderr.split("stopped at step ")[1].split(" ")[0])
    assert 1 <= stopped_at < 400
    assert_last_and_best(run, workdir, stopped_at)


def test_sigterm_leaves_the_last_and_the_best_model(run, workdir, shapes):
    # Validation every step, so that a best model exists when the signal comes.
    config = tiny_config(workdir, eval_period=1)
    process = subprocess.Popen([str(BIN_DIR / "mrcnn-train"), "--config", config, "--output-dir", "run",
                                "--device", "cpu"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    best = workdir / "run" / "checkpoints" / "best.json"
    deadline = time.monotonic() + 300
    while not best.exists():
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "stopped at step" in stderr and "signal" in stderr
    stopped_at = int(stderr.split("stopped at step ")[1].split(" ")[0])
    assert_last_and_best(run, workdir, stopped_at)
