"""Every weight file form loads to the same model: torch.save zip and legacy (pre-1.6) formats,
torchvision's old (pre-0.13) key names as in its published COCO weights, safetensors, and a
training checkpoint that wraps the state dict. Each must give bit-identical outputs."""
import json
import subprocess

import pytest

from mrcnn_testing import SMALL_MODEL_CONFIG, TEST_BIN_DIR, make_small_torchvision_model, write_safetensors

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")


def old_name(key):
    """torchvision's key names before its 0.13 rename."""
    import re
    key = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.(weight|bias)$", r"\1.\2", key)
    key = re.sub(r"^rpn\.head\.conv\.0\.0\.(weight|bias)$", r"rpn.head.conv.\1", key)
    return re.sub(r"^roi_heads\.mask_head\.(\d)\.0\.(weight|bias)$",
                  lambda m: f"roi_heads.mask_head.mask_fcn{int(m[1]) + 1}.{m[2]}", key)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weights")
    state = make_small_torchvision_model().state_dict()
    torch.save(state, tmp / "zip.pth")
    torch.save(state, tmp / "legacy.pth", _use_new_zipfile_serialization=False)
    old = {old_name(k): v for k, v in state.items()}
    assert any(k.startswith("roi_heads.mask_head.mask_fcn") for k in old)
    torch.save(old, tmp / "old_names_legacy.pth", _use_new_zipfile_serialization=False)
    write_safetensors(tmp / "weights.safetensors", {k: v for k, v in state.items() if v.dtype != torch.int64})
    torch.save({"model": state, "epoch": 3, "optimizer": {"lr": 0.01}}, tmp / "checkpoint.pt")
    (tmp / "config.json").write_text(json.dumps(SMALL_MODEL_CONFIG))
    write_safetensors(tmp / "images.safetensors", {"image0": torch.rand(3, 150, 190)})
    return tmp


def run_dump(folder, weights):
    out = folder / (weights + ".out.pt")
    subprocess.run([str(TEST_BIN_DIR / "model_dump"), folder / "config.json", folder / weights,
                    folder / "images.safetensors", out], check=True, capture_output=True)
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("weights", ["legacy.pth", "old_names_legacy.pth", "weights.safetensors", "checkpoint.pt"])
def test_same_outputs_as_zip_state_dict(files, weights):
    expected = run_dump(files, "zip.pth")
    got = run_dump(files, weights)
    assert len(expected["boxes_0"]) > 0
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_truncated_files_are_reported(files, tmp_path):
    data = (files / "weights.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    result = subprocess.run([str(TEST_BIN_DIR / "model_dump"), files / "config.json", tmp_path / "cut.safetensors",
                             files / "images.safetensors", tmp_path / "o.pt"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "cut.safetensors: not a valid safetensors file: tensor" in result.stderr
    assert "fall outside" in result.stderr
    legacy = (files / "legacy.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(legacy[: len(legacy) - 1000])
    result = subprocess.run([str(TEST_BIN_DIR / "model_dump"), files / "config.json", tmp_path / "cut.pth",
                             files / "images.safetensors", tmp_path / "o.pt"], capture_output=True, text=True)
    assert result.returncode != 0 and "cut.pth: storage" in result.stderr and "truncated" in result.stderr
