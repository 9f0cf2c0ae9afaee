"""Inception-ResNet-v2 against the real TF OD API (../shared/tfod-reference): a seeded, perturbed
Mask R-CNN Inception-ResNet-v2 checkpoint (the one the TF tests share,
mrcnn_testing.tfod_reference_model) loaded into our backbone gives the reference's
block17_20_ac and its box classifier features on the reference's own crops, at 320x320 and at an
odd 257x321 (TF's SAME padding puts the odd pixel at the bottom/right), within the noise floor
measured in the same run: TF's own outputs with oneDNN on against off (TF_ENABLE_ONEDNN_OPTS)."""
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cli.test_tf_checkpoint import IRV2_CONFIG
from mrcnn_testing import (TEST_BIN_DIR, TFOD_DIR, TFOD_SETUP, assert_one_error, run_tool, tensorflow_python,
                           tfod_reference_model)

torch = pytest.importorskip("torch")

# (name, reference.py's resizer, image size), each run on the shared model's checkpoint.
SIZES = [("320", ["--size", "320"], None),
         ("257x321", ["--keep_aspect", "257", "321"], (500, 400))]
FEATURES = "tests/reference/tf_inception_features.py"


def run_python(python, args, cwd, **env):
    result = subprocess.run([str(python), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "TFOD_SRC": str(TFOD_DIR / "src"), **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference's dumps at both sizes and the OD API extractor's outputs on them (oneDNN on
    and off), made once per session."""
    from PIL import Image

    model = tfod_reference_model()
    python = tensorflow_python()
    tmp = tmp_path_factory.mktemp("inception")
    (tmp / "irv2.config").write_text(IRV2_CONFIG)
    (tmp / "ref").symlink_to(model / "ckpt")
    image = model / "img0.png"

    def dump(name, resizer, size):
        path = image if size is None else tmp / f"{name}.png"
        if size is not None:  # 400x500 → keep_aspect 257 gives 257x321
            Image.open(image).convert("RGB").resize(size).save(path)
        run_python(python, [TFOD_SETUP.with_name("reference.py"), "--config", "irv2.config", "--image", path,
                            *resizer, "--max_proposals", "8", "--runs", "1", "--list_vars", "0",
                            "--restore", "ref/ckpt-1", "--dump", f"{name}.npz"], tmp)
    with ThreadPoolExecutor(2) as pool:  # tracing, most of a run, takes one core
        list(pool.map(lambda size: dump(*size), SIZES))
    dumps = [f"{name}.npz" for name, _, _ in SIZES]
    source = Path(os.environ.get("MRCNN_SOURCE_DIR", Path(__file__).parents[2]))
    runs = [subprocess.Popen([str(python), str(source / FEATURES), "irv2.config", "ref/ckpt-1", f"tf_onednn{on}.npz",
                              *dumps], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "TFOD_SRC": str(TFOD_DIR / "src"), "TF_ENABLE_ONEDNN_OPTS": on})
            for on in ("1", "0")]
    for run in runs:
        assert run.wait(timeout=900) == 0, run.stderr.read()[-3000:]
    return tmp, np.load(tmp / "tf_onednn1.npz"), np.load(tmp / "tf_onednn0.npz")


def ours(tmp, index, tf):
    """Our backbone from the reference's checkpoint on the reference's preprocessed image and crops."""
    name = SIZES[index][0]
    dump = np.load(tmp / f"{name}.npz")
    torch.save({"image": torch.from_numpy(dump["preprocessed"]), "crops": torch.from_numpy(tf[f"{index}/crops"])},
               tmp / f"in_{name}.pt")
    result = subprocess.run([str(TEST_BIN_DIR / "inception_dump"), "ref/ckpt-1", f"in_{name}.pt", f"out_{name}.pt"],
                            cwd=tmp, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return {k: v.numpy() for k, v in torch.load(tmp / f"out_{name}.pt", weights_only=False).items()}, dump


def errors(a, b):
    """Max absolute and RMS difference."""
    d = (a.astype(np.float64) - b.astype(np.float64))
    return np.abs(d).max(), np.sqrt((d * d).mean())


@pytest.mark.parametrize("index", [0, 1], ids=[name for name, _, _ in SIZES])
def test_backbone_matches_tf_od_api(reference, index):
    tmp, tf_on, tf_off = reference
    got, dump = ours(tmp, index, tf_on)
    height, width = dump["preprocessed"].shape[1:3]
    # The crops are the reference's own: its box classifier on them gave exactly the dump's features.
    np.testing.assert_array_equal(tf_on[f"{index}/box_classifier_features"],
                                  tf_on[f"{index}/reference_box_classifier_features"])
    for key, shape in [("block17_20_ac", (1, -(-height // 16), -(-width // 16), 1088)),
                       ("box_classifier_features", (8, 9, 9, 1536))]:
        expected = tf_on[f"{index}/{key}"]
        assert got[key].shape == expected.shape == shape, key
        floor_max, floor_rms = errors(tf_on[f"{index}/{key}"], tf_off[f"{index}/{key}"])
        # A floor of 0 (both paths bit-identical) still allows one float32 ulp at the outputs' scale.
        ulp = np.finfo(np.float32).eps * np.abs(expected).max()
        max_error, rms_error = errors(got[key], expected)
        print(f"{SIZES[index][0]} {key}: ours-TF max {max_error:.3g} rms {rms_error:.3g}; "
              f"TF oneDNN on-off max {floor_max:.3g} rms {floor_rms:.3g}")
        assert max_error <= 4 * max(floor_max, ulp), key
        assert rms_error <= 4 * max(floor_rms, ulp / 10), key



# A TF2 checkpoint shaped like the OD API's (a Keras model under _feature_extractor_for_proposal_features)
# that is not Inception-ResNet-v2: one auto-named conv2d_bn and a residual projection of another name.
NOT_IRV2 = """import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
inputs = tf.keras.Input((8, 8, 3))
x = tf.keras.layers.Conv2D(32, 3, use_bias=False)(inputs)
x = tf.keras.layers.BatchNormalization(scale=False)(x)
x = tf.keras.layers.Conv2D(5, 1, name="block99_1_conv")(x)
extractor = tf.keras.Model(inputs, x)
model = tf.Module()
model._feature_extractor_for_proposal_features = extractor
tf.train.Checkpoint(model=model).save(sys.argv[1])
"""


def test_other_networks_named_in_one_error(tmp_path):
    """Every variable the map does not take and every one it lacks, named with our parameter."""
    python = tensorflow_python()
    run_python(python, ["-c", NOT_IRV2, "ckpt/ckpt"], tmp_path, TF_CPP_MIN_LOG_LEVEL="3")
    torch.save({"image": torch.zeros(1, 33, 33, 3)}, tmp_path / "in.pt")
    result = subprocess.run([str(TEST_BIN_DIR / "inception_dump"), "ckpt/ckpt-1", "in.pt", "out.pt"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    message = result.stderr
    assert "not the TF OD API's Inception-ResNet-v2 feature extractor" in message
    # conv2d/kernel [3,3,3,32] is the stem's first unit; its norm is Keras' batch_normalization.
    assert "conv2d_1/kernel (for first_stage.conv2d_2a_3x3.weight)" in message
    assert "batch_normalization_1/beta (for first_stage.conv2d_2a_3x3.beta)" in message
    assert "conv2d/kernel (for" not in message and "batch_normalization/beta (for" not in message
    assert "block35_1_conv/kernel (for first_stage.block35_1.conv_weight)" in message
    assert "2 unmapped: [block99_1_conv/bias (model/_feature_extractor_for_proposal_features/" in message
    # 896 extractor tensors: 203 conv2d_bn units and conv_7b (4 each), 40 residual projections (2 each);
    # only the stem's first unit's 4 are there.
    assert message.count(" (for ") == 204 * 4 + 40 * 2 - 4


def test_inception_backbone_refused_by_the_detector_config(tmp_path):
    """The backbone exists; the Mask R-CNN on it (issue 22) does not yet, so configurations refuse it."""
    (tmp_path / "irv2.json").write_text('{"model": {"backbone": "inception_resnet_v2"}}')
    assert_one_error(run_tool(tmp_path, "mrcnn-config", "validate", "irv2.json"), "mrcnn-config",
                     "model.backbone", "inception_resnet_v2")
