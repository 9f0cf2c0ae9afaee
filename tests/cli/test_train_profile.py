"""mrcnn-train --profile-steps: a PyTorch profiler (Kineto) Chrome trace of the chosen steps, which
scripts/trace_summary.py reads; bad values stop the tool before training with one error line."""
import json
import subprocess
import sys

import pytest

from mrcnn_testing import SOURCE_DIR, assert_one_error, write_tiny_shapes_config


@pytest.fixture
def shapes(make_shapes):
    return make_shapes("shapes", train=4, val=2)


def tiny_config(workdir, steps):
    return write_tiny_shapes_config(workdir, {"steps": steps, "batch_size": 2, "checkpoint_period": 100,
                                              "eval_period": 100, "log_period": 1,
                                              "lr_schedule": {"type": "constant", "warmup_steps": 0,
                                                              "milestones": []}})


def operator_events(trace):
    return [e for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "cpu_op"]


def test_profile_steps_write_a_trace_of_those_steps(run, workdir, shapes):
    config = tiny_config(workdir, steps=4)
    result = run("mrcnn-train", "--config", config, "--output-dir", "out", "--device", "cpu",
                 "--profile-steps", "2:3")
    assert result.returncode == 0, result.stderr
    assert "profiling steps 2 to 3" in result.stderr
    trace = json.loads((workdir / "out" / "profile-trace.json").read_text())
    ops = operator_events(trace)
    names = {e["name"] for e in ops}
    # A training step's forward and backward ran inside the window.
    assert "aten::convolution" in names and any("Backward" in n for n in names), sorted(names)[:40]

    # Two steps hold about twice the convolutions of one: the window is the steps asked for.
    one = run("mrcnn-train", "--config", config, "--output-dir", "one", "--device", "cpu", "--profile-steps", "3:3")
    assert one.returncode == 0, one.stderr
    single = operator_events(json.loads((workdir / "one" / "profile-trace.json").read_text()))
    count = lambda events: sum(e["name"] == "aten::convolution" for e in events)
    assert count(single) > 0 and 1.7 < count(ops) / count(single) < 2.3, (count(ops), count(single))

    summary = subprocess.run([sys.executable, str(SOURCE_DIR / "scripts" / "trace_summary.py"), "--steps", "2",
                              str(workdir / "out" / "profile-trace.json")], capture_output=True, text=True)
    assert summary.returncode == 0, summary.stderr
    assert "| CPU operators |" in summary.stdout and "wall time of the window" in summary.stdout


def test_profile_window_past_the_end_still_writes_the_trace(run, workdir, shapes):
    config = tiny_config(workdir, steps=2)
    result = run("mrcnn-train", "--config", config, "--output-dir", "out", "--device", "cpu",
                 "--profile-steps", "2:9")
    assert result.returncode == 0, result.stderr
    assert operator_events(json.loads((workdir / "out" / "profile-trace.json").read_text()))


@pytest.mark.parametrize("value", ["3:2", "0:2", "2", "a:b", "2:3:4", ":", "1:99999999999999999999"])
def test_bad_profile_steps_is_one_error(run, workdir, shapes, value):
    config = tiny_config(workdir, steps=2)
    result = run("mrcnn-train", "--config", config, "--output-dir", "out", "--device", "cpu",
                 "--profile-steps", value)
    assert_one_error(result, "mrcnn-train", f"--profile-steps '{value}'", "FIRST:LAST")
    assert not (workdir / "out" / "metrics.jsonl").exists()


def test_trace_summary_refuses_a_file_that_is_no_trace(workdir):
    bad = workdir / "bad.json"
    bad.write_text("{not json")
    result = subprocess.run([sys.executable, str(SOURCE_DIR / "scripts" / "trace_summary.py"), str(bad)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "bad.json" in result.stderr
