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

TEST_BIN_DIR = Path(os.environ.get("MRCNN_TEST_BIN_DIR", Path(__file__).resolve().parents[2] / "build" / "tests"))
PENNFUDAN = SOURCE_DIR.parent / "shared" / "data" / "pennfudan"


def write_safetensors(path, tensors, metadata=None):
    """A minimal safetensors writer (the format is a JSON header plus raw little-endian bytes),
    so that the tests need no extra package."""
    import json
    import struct

    import torch

    names = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.uint8: "U8", torch.float64: "F64"}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
