"""Every tool answers --help and --version, and reports bad usage on one line with exit 2."""
import re

import pytest

from mrcnn_testing import TOOLS


@pytest.mark.parametrize("tool", TOOLS)
def test_help_explains_with_examples(run, tool):
    result = run(tool, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: {tool}" in result.stdout or "Usage:" in result.stdout
    assert "Examples:" in result.stdout
    assert "--version" in result.stdout and "--verbose" in result.stdout


@pytest.mark.parametrize("tool", TOOLS)
def test_version_names_tool_and_libraries(run, tool):
    result = run(tool, "--version")
    assert result.returncode == 0, result.stderr
    assert re.match(rf"{tool} \d+\.\d+\.\d+ \(libtorch \d+\.\d+\.\d+.*, OpenCV \d+\.\d+\.\d+, CUDA kernels: (on|off)\)",
                    result.stdout), result.stdout


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_flag_is_one_clear_error(run, tool):
    result = run(tool, "--no-such-flag")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tool}: error: "), result.stderr
    assert "--no-such-flag" in lines[0]


@pytest.mark.parametrize("tool", ["mrcnn-train", "mrcnn-infer"])
def test_bad_device_is_rejected(run, workdir, tool):
    (workdir / "c.json").write_text("{}")
    args = ["--config", "c.json", "--device", "tpu"]
    args += ["--output-dir", "out"] if tool == "mrcnn-train" else ["--weights", "w", "--input", "x", "-o", "r.json"]
    result = run(tool, *args)
    assert result.returncode == 2
    assert "device 'tpu': expected auto, cpu, cuda or cuda:N" in result.stderr


@pytest.mark.parametrize("tool", ["mrcnn-train", "mrcnn-infer"])
def test_invalid_config_is_rejected_before_any_work(run, workdir, tool):
    (workdir / "c.json").write_text('{"model": {"num_classes": 1}}')
    args = ["--config", "c.json"]
    args += ["--output-dir", "out"] if tool == "mrcnn-train" else ["--weights", "w", "--input", "x", "-o", "r.json"]
    result = run(tool, *args)
    assert result.returncode == 2
    assert "c.json: model.num_classes: expected an integer >= 2, found 1" in result.stderr
    assert not (workdir / "out").exists()
