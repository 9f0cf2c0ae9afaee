"""The TF OD API family's training losses in mrcnn against the real TF OD API's `model.loss`
(../shared/tfod-reference) for one batch of two real photos with their groundtruth (Penn-Fudan's
instance masks and their boxes, classes in turn, plus two objects at each image's first proposals
so that the box classifier has positives), the same weights (reference.py's seeded,
perturbed and calibrated model that the TF tests share, mrcnn_testing.tfod_reference_model, through
its TF2 checkpoint) and a fixed 320x320 resizer.

The batch is made deterministic for both samplers: first_stage_minibatch_size is larger than the
anchors, and second_stage_batch_size equals first_stage_max_proposals with a balance fraction of 1,
so every candidate of either stage is in its minibatch and no random draw is left.

Two checks, each of the five terms (RPN localization and objectness, box classifier localization
and classification, mask), each scaled by the config's loss weights (2, 1, 2, 1, 4; our side reads
them and the samplers' sizes from the same pipeline.config, as import-tf maps them):
- our losses on the reference's own prediction dict (targets, samplers, loss functions alone);
- our losses after our own training forward pass (anchors outside the input dropped, proposals,
  their sample, box classifier and mask head on it) from the checkpoint on the reference's
  preprocessed batch.
Tolerances: 4x the noise floor measured in the same run (the reference's terms with oneDNN on
against off, TF_ENABLE_ONEDNN_OPTS), and never below a few float32 ulps of the term."""
import subprocess

import numpy as np
import pytest

from cli.test_tf_checkpoint import IRV2_CONFIG
from mrcnn_testing import (PENNFUDAN, SOURCE_DIR, TEST_BIN_DIR, TFOD_MODEL_CLASSES, TFOD_MODEL_PROPOSALS,
                           TFOD_MODEL_SIZE, sample_images, tensorflow_python, tfod_reference_model)
from reference.test_inception_parity import run_python

torch = pytest.importorskip("torch")

CLASSES, SIZE, PROPOSALS, IMAGES = TFOD_MODEL_CLASSES, TFOD_MODEL_SIZE, TFOD_MODEL_PROPOSALS, 2
TRAINING = ("first_stage_minibatch_size: 100000 second_stage_batch_size: %d second_stage_balance_fraction: 1.0 "
            "resize_masks: false" % PROPOSALS)
CONFIG = IRV2_CONFIG.replace("resize_masks: false", TRAINING)
TERMS = {"rpn_localization": "loss/Loss/RPNLoss/localization_loss",
         "rpn_objectness": "loss/Loss/RPNLoss/objectness_loss",
         "box_localization": "loss/Loss/BoxClassifierLoss/localization_loss",
         "box_classification": "loss/Loss/BoxClassifierLoss/classification_loss",
         "mask": "loss/Loss/BoxClassifierLoss/mask_loss"}
ULPS = 16  # float32 ulps of a term: sums of thousands of float32 values in another order


def instance_masks(index, shape):
    """Image `index`'s instance masks (N, H, W) bool: Penn-Fudan's when the data is there (as
    sample_images picks its photos), else three rectangles."""
    from PIL import Image

    files = sorted((PENNFUDAN / "PedMasks").glob("*.png"))
    if files:
        ids = np.asarray(Image.open(files[index]))
        return np.stack([ids == i for i in np.unique(ids) if i != 0])
    height, width = shape
    masks = np.zeros((3, height, width), bool)
    for i in range(3):
        masks[i, height * i // 4: height * (i + 2) // 4, width * i // 5: width * (i + 3) // 5] = True
    return masks


def groundtruth(image, index):
    """Boxes (normalised), classes (1, 2, 3 in turn) and masks at the 320x320 input (nearest)."""
    from PIL import Image

    shape = np.asarray(Image.open(image)).shape[:2]
    masks = instance_masks(index, shape)
    resized = np.stack([np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((SIZE, SIZE), Image.NEAREST)) > 127
                        for m in masks]).astype(np.float32)
    boxes = []
    for m in resized:
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        boxes.append([rows[0] / SIZE, cols[0] / SIZE, (rows[-1] + 1) / SIZE, (cols[-1] + 1) / SIZE])
    classes = np.arange(len(resized)) % CLASSES + 1
    return np.asarray(boxes, np.float32), classes.astype(np.int64), resized


def reference_losses(python, tmp, images, onednn):
    """The reference's terms and predictions. The first run (oneDNN on) adds two objects at each
    image's first proposals to gt.npz and writes the whole groundtruth to gt_final.npz, which the
    second (oneDNN off) takes as it is."""
    first = onednn == "1"
    extra = ["--add_at_proposals", "2", "--groundtruth_out", "gt_final.npz"] if first else []
    run_python(python, [SOURCE_DIR / "tests/reference/tf_tfod_loss.py", "train.config", "ref/ckpt-1",
                        "gt.npz" if first else "gt_final.npz", f"loss_onednn{onednn}.npz", *images, "--classes",
                        CLASSES, "--size", SIZE, "--proposals", PROPOSALS, *extra], tmp, TF_ENABLE_ONEDNN_OPTS=onednn)
    return dict(np.load(tmp / f"loss_onednn{onednn}.npz"))


def ours(tmp, tf, gt):
    inputs = {"preprocessed": tf["preprocessed"], "true_shapes": tf["true_image_shapes"][:, :2],
              "rpn_box_encodings": tf["pred/rpn_box_encodings"],
              "rpn_objectness": tf["pred/rpn_objectness_predictions_with_background"], "anchors": tf["pred/anchors"],
              "proposal_boxes": tf["pred/proposal_boxes"], "num_proposals": tf["pred/num_proposals"].astype(np.int64),
              "refined_box_encodings": tf["pred/refined_box_encodings"],
              "class_logits": tf["pred/class_predictions_with_background"], "mask_logits": tf["pred/mask_predictions"],
              **gt}
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}, tmp / "in.pt")
    result = subprocess.run([str(TEST_BIN_DIR / "tfod_loss_dump"), "ref/ckpt-1", "in.pt", "out.pt", "--pipeline",
                             "train.config", "--classes", str(CLASSES), "--proposals", str(PROPOSALS), "--size",
                             str(SIZE)], cwd=tmp, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return {k: v.numpy() for k, v in torch.load(tmp / "out.pt", weights_only=False).items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The reference's losses with oneDNN on and off, and ours, from the shared reference model's
    checkpoint. CONFIG differs from the model's pipeline in training's samplers only, which its
    inference-mode calibration does not read: the same weights as a model of CONFIG's own."""
    model = tfod_reference_model()
    python = tensorflow_python()
    tmp = tmp_path_factory.mktemp("tfod_loss")
    (tmp / "train.config").write_text(CONFIG)
    (tmp / "ref").symlink_to(model / "ckpt")
    images = sample_images(tmp / "images", IMAGES)
    gt = {}
    for i, image in enumerate(images):
        gt[f"boxes{i}"], gt[f"classes{i}"], gt[f"masks{i}"] = groundtruth(image, i)
    np.savez(tmp / "gt.npz", **gt)
    on = reference_losses(python, tmp, images, "1")
    off = reference_losses(python, tmp, images, "0")
    gt = dict(np.load(tmp / "gt_final.npz"))
    return {"tf": on, "tf_off": off, "gt": gt, "ours": ours(tmp, on, gt)}


def tolerance(runs, term):
    """4x the reference's own oneDNN on/off difference of the term, at least ULPS float32 ulps."""
    expected, off = float(runs["tf"][TERMS[term]]), float(runs["tf_off"][TERMS[term]])
    return 4 * max(abs(expected - off), ULPS * np.finfo(np.float32).eps * abs(expected))


def test_the_batch_is_deterministic_and_every_term_counts(runs):
    """Every candidate fits both minibatches, and no term is trivially 0 (positives at both stages)."""
    tf, gt = runs["tf"], runs["gt"]
    assert len(tf["pred/anchors"]) < 100000 // 2
    np.testing.assert_array_equal(tf["pred/num_proposals"], [PROPOSALS] * IMAGES)  # NMS gave them all; all sampled
    for term, key in TERMS.items():
        assert float(tf[key]) > 0, term
    assert sum(len(gt[f"boxes{i}"]) for i in range(IMAGES)) >= 3 + 2 * IMAGES


@pytest.mark.parametrize("term", list(TERMS))
def test_our_losses_on_the_references_predictions(runs, term):
    expected, got = float(runs["tf"][TERMS[term]]), float(runs["ours"][f"tf/{term}"])
    tol = tolerance(runs, term)
    print(f"{term}: TF {expected:.9g}, ours on TF's predictions {got:.9g} (diff {got - expected:.3g}, "
          f"tolerance {tol:.3g})")
    assert abs(got - expected) <= tol


@pytest.mark.parametrize("term", list(TERMS))
def test_our_training_forward_and_losses(runs, term):
    tf, got = runs["tf"], runs["ours"]
    np.testing.assert_array_equal(got["ours/anchors"], tf["pred/anchors"])
    np.testing.assert_array_equal(got["ours/num_proposals"], tf["pred/num_proposals"])
    expected, ours_value = float(tf[TERMS[term]]), float(got[f"ours/{term}"])
    tol = tolerance(runs, term)
    print(f"{term}: TF {expected:.9g}, ours {ours_value:.9g} (diff {ours_value - expected:.3g}, tolerance {tol:.3g}; "
          f"TF oneDNN on-off {float(runs['tf_off'][TERMS[term]]) - expected:.3g})")
    assert abs(ours_value - expected) <= tol
