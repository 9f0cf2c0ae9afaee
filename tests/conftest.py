"""Fixtures of the Python tests; the helpers themselves are in mrcnn_testing.py."""
import json

import pytest

from mrcnn_testing import SMALL_MODEL_CONFIG, Runner, make_small_torchvision_model


@pytest.fixture
def run(tmp_path):
    return Runner(tmp_path)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def make_shapes(run, workdir):
    """make_shapes(name, train, val, size): a small generated shapes set in workdir/name."""
    def make(name="shapes", train=8, val=2, size=64):
        result = run("mrcnn-train", "--make-shapes", name, "--shapes-train", str(train), "--shapes-val", str(val),
                     "--shapes-size", str(size))
        assert result.returncode == 0, result.stderr
        return workdir / name
    return make


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """(weights .pth, config .json) of a small random ResNet-18 model, shared by a session."""
    pytest.importorskip("torchvision")
    import torch

    folder = tmp_path_factory.mktemp("small_model")
    torch.save(make_small_torchvision_model().state_dict(), folder / "r18.pth")
    (folder / "r18.json").write_text(json.dumps(SMALL_MODEL_CONFIG))
    return folder / "r18.pth", folder / "r18.json"
