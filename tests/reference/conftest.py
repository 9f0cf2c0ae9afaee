"""Shared fixtures of the reference tests: where the built tools and the sources are."""
import os
import subprocess
from pathlib import Path

import pytest

BIN_DIR = Path(os.environ.get("MRCNN_BIN_DIR", Path(__file__).resolve().parents[2] / "build" / "tools"))
SOURCE_DIR = Path(os.environ.get("MRCNN_SOURCE_DIR", Path(__file__).resolve().parents[2]))
TOOLS = ["mrcnn-config", "mrcnn-train", "mrcnn-infer", "mrcnn-eval", "mrcnn-visualize"]


class Runner:
    def __init__(self, cwd: Path):
        self.cwd = cwd

    def __call__(self, tool, *args, check_clean_error=True):
        exe = BIN_DIR / tool
        assert exe.exists(), f"{exe} is not built"
        result = subprocess.run([str(exe), *map(str, args)], cwd=self.cwd, capture_output=True, text=True,
                                timeout=120)
        if check_clean_error and result.returncode == 2:
            # The one error path: every stderr line that is an error carries the tool's prefix,
            # and nothing looks like a crash.
            errors = [l for l in result.stderr.splitlines() if "error" in l.lower()]
            assert errors, f"exit 2 without an error line: {result.stderr!r}"
            for line in errors:
                assert line.startswith(f"{tool}: error: "), line
            assert "terminate called" not in result.stderr and "Traceback" not in result.stderr
        return result


@pytest.fixture
def run(tmp_path):
    return Runner(tmp_path)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path
