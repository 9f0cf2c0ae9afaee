"""The TF OD API's Mask R-CNN (Inception-ResNet-v2) in mrcnn against the real TF OD API
(../shared/tfod-reference): the reference's seeded, perturbed and calibrated model, loaded from its
TF2 checkpoint, on a real photo at a fixed 320x320 resizer and a keep-aspect resizer (with and
without pad_to_max_dimension). Two kinds of checks:

- each stage on exactly the reference's inputs (its RPN outputs -> proposals, its proposals -> box
  classifier, its box classifier outputs -> detections, its detection boxes -> mask logits, its
  masks -> masks reframed into the image), so that one stage's error never hides in the next;
- the whole model on the image: RPN outputs, proposals, detections (boxes IoU >= 0.99, scores)
  and masks pasted into the image (IoU >= 0.98).

Tolerances come from the noise floor measured in the same run, the larger of two measures of how
much float32 rounding alone moves each output: the reference with oneDNN on against off
(TF_ENABLE_ONEDNN_OPTS), and ours as inference runs it (batch norms folded into the convolutions,
channels-last) against ours as loaded. One measure alone can be small by chance: under AVX2-capped
kernels the reference's on/off RMS at the keep-aspect sizes was 1.85e-7, a quarter of fixed320's,
while ours against TF and ours folded against unfolded stayed at 8-10e-7 in every case. Or a few float32 ulps where both sides do the same float32 arithmetic
on the same inputs. Detections near a decision (the score at the cut to max_total, or each other's
score within the tolerance) may differ; every other one must be found."""
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cli.test_tf_checkpoint import IRV2_CONFIG
from mrcnn_testing import (SOURCE_DIR, TEST_BIN_DIR, TFOD_MODEL_CLASSES, TFOD_MODEL_PROPOSALS, TFOD_MODEL_SIZE,
                           TFOD_SETUP, tensorflow_python, tfod_reference_model)
from reference.test_inception_parity import errors, run_python

torch = pytest.importorskip("torch")

PROPOSALS = TFOD_MODEL_PROPOSALS  # the shared reference model's (its fixed320 run, oneDNN on, is its dump)
CLASSES = TFOD_MODEL_CLASSES
PAD_CONFIG = IRV2_CONFIG.replace("fixed_shape_resizer { height: 1024 width: 1024 }",
                                 "keep_aspect_ratio_resizer { min_dimension: 256 max_dimension: 384 "
                                 "pad_to_max_dimension: true }")
# (name, pipeline.config, reference.py's resizer, tfod_dump's resizer override)
CASES = [("fixed320", "irv2.config", ["--size", str(TFOD_MODEL_SIZE)], ["--size", str(TFOD_MODEL_SIZE)]),
         ("keep_aspect", "irv2.config", ["--keep_aspect", "256", "384"], ["--keep-aspect", "256", "384"]),
         ("keep_aspect_pad", "pad.config", ["--keep_aspect", "256", "384"], ["--keep-aspect", "256", "384"])]
ULPS = 8  # float32 ulps allowed where both sides compute the same float32 arithmetic


def reference_run(python, tmp, image, case, onednn):
    name, config, resizer, _ = case
    run_python(python, [TFOD_SETUP.with_name("reference.py"), "--config", config, "--image", image, *resizer,
                        "--num_classes", CLASSES, "--max_proposals", PROPOSALS, "--runs", "1", "--list_vars", "0",
                        "--restore", "ref/ckpt-1", "--dump", f"{name}_onednn{onednn}.npz"], tmp,
               TF_ENABLE_ONEDNN_OPTS=onednn)


def ours(tmp, case, tf):
    """Our model from the reference's checkpoint on the image, and each stage on the reference's inputs."""
    name, config, _, flags = case
    n, m = int(tf["pred/num_proposals"][0]), int(tf["det/num_detections"][0])
    inputs = {"image": tf["image"], "tf/rpn_box_encodings": tf["pred/rpn_box_encodings"][0],
              "tf/rpn_objectness": tf["pred/rpn_objectness_predictions_with_background"][0],
              "tf/anchors": tf["pred/anchors"], "tf/proposals": tf["pred/proposal_boxes_normalized"][0, :n],
              "tf/refined_box_encodings": tf["pred/refined_box_encodings"][:n],
              "tf/class_logits": tf["pred/class_predictions_with_background"][:n],
              "tf/detection_boxes": tf["det/detection_boxes"][0, :m], "tf/detection_masks": tf["det/detection_masks"][0, :m]}
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}, tmp / f"in_{name}.pt")
    # The model from the same pipeline.config, with reference.py's overrides; as loaded, and (its
    # own noise floor) prepared as mrcnn-infer runs it.
    dumps = []
    for extra in ([], ["--prepare"]):
        out = tmp / f"out_{name}{''.join(extra)}.pt"
        result = subprocess.run([str(TEST_BIN_DIR / "tfod_dump"), "ref/ckpt-1", f"in_{name}.pt", out, "--pipeline",
                                 config, "--classes", str(CLASSES), "--proposals", str(PROPOSALS), *flags, *extra],
                                cwd=tmp, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        dumps.append({k: v.numpy() for k, v in torch.load(out, weights_only=False).items()})
    return dumps


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Per case: the reference's dumps with oneDNN on and off, its reframed masks and our outputs.
    The shared reference model's own run is the fixed320 case with oneDNN on; the other runs
    restore its checkpoint."""
    model = tfod_reference_model()
    python = tensorflow_python()
    tmp = tmp_path_factory.mktemp("tfod")
    (tmp / "irv2.config").write_text(IRV2_CONFIG)
    (tmp / "pad.config").write_text(PAD_CONFIG)
    (tmp / "ref").symlink_to(model / "ckpt")
    (tmp / f"{CASES[0][0]}_onednn1.npz").symlink_to(model / "reference.npz")
    image = model / "img0.png"
    jobs = [(case, onednn) for case in CASES for onednn in ("1", "0") if (case, onednn) != (CASES[0], "1")]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda job: reference_run(python, tmp, image, job[0], job[1]), jobs))
    dumps = [f"{case[0]}_onednn{on}.npz" for case in CASES for on in ("1", "0")]
    run_python(python, [SOURCE_DIR / "tests/reference/tf_tfod_reframe.py", "reframed.npz", *dumps], tmp)
    reframed = np.load(tmp / "reframed.npz")
    out = {}
    for case in CASES:
        on, off = (np.load(tmp / f"{case[0]}_onednn{x}.npz") for x in ("1", "0"))
        loaded, prepared = ours(tmp, case, on)
        out[case[0]] = {"tmp": tmp, "tf": on, "tf_off": off, "mask_on": reframed[f"{case[0]}_onednn1.npz"],
                        "mask_off": reframed[f"{case[0]}_onednn0.npz"], "ours": loaded, "ours_prepared": prepared}
    return out


def ulp_tolerance(expected):
    return ULPS * np.finfo(np.float32).eps * max(float(np.abs(expected).max(initial=0.0)), np.finfo(np.float32).tiny)


def box_iou(a, b):
    """IoU matrix of [ymin, xmin, ymax, xmax] boxes (float64)."""
    a, b = a.astype(np.float64)[:, None], b.astype(np.float64)[None]
    inter = (np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None) *
             np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None))
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def mask_iou(a, b):
    a, b = a > 0.5, b > 0.5
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def assert_within_floor(name, got, expected, expected_off, got_prepared):
    """got - expected within 4x the noise floor (max and RMS), at least a few ulps. The floor is the
    larger of the reference's oneDNN on/off difference and ours loaded/prepared."""
    tf_max, tf_rms = errors(expected, expected_off)
    ours_max, ours_rms = errors(got, got_prepared)
    floor_max, floor_rms = max(tf_max, ours_max), max(tf_rms, ours_rms)
    ulp = ulp_tolerance(expected)
    max_error, rms_error = errors(got, expected)
    print(f"{name}: ours-TF max {max_error:.3g} rms {rms_error:.3g}; TF oneDNN on-off max {tf_max:.3g} "
          f"rms {tf_rms:.3g}; ours loaded-prepared max {ours_max:.3g} rms {ours_rms:.3g}")
    assert got.shape == expected.shape, name
    assert max_error <= 4 * max(floor_max, ulp), name
    assert rms_error <= 4 * max(floor_rms, ulp / 10), name


def detections(d, prefix=""):
    """A dump's detections as (boxes, scores, classes) numpy arrays, valid rows only."""
    if "det/num_detections" in d:
        m = int(d["det/num_detections"][0])
        return d["det/detection_boxes"][0, :m], d["det/detection_scores"][0, :m], d["det/detection_classes"][0, :m]
    return d[prefix + "detections/boxes"], d[prefix + "detections/scores"], d[prefix + "detections/classes"]


def score_tolerance(run):
    """Detection scores: 4x the largest on/off difference of the reference's matched detections."""
    boxes, scores, classes = detections(run["tf"])
    boxes_off, scores_off, classes_off = detections(run["tf_off"])
    iou = box_iou(boxes, boxes_off) * (classes[:, None] == classes_off[None])
    best = iou.argmax(1)
    matched = iou[np.arange(len(boxes)), best] >= 0.99
    floor = np.abs(scores[matched] - scores_off[best[matched]]).max(initial=0.0)
    return 4 * max(floor, ulp_tolerance(scores))


def clear(scores, index, tolerance, cut):
    """Whether detection `index` is away from every decision: the cut score and its neighbours."""
    s = scores[index]
    near = np.abs(scores - s) <= 2 * tolerance
    near[index] = False
    return s > cut + 2 * tolerance and not near.any()


def match_detections(expected, got, tolerance, full, masks=None):
    """Every clear detection of `expected` found in `got`: same class, box IoU >= 0.99, score
    within tolerance, and (masks = (expected, got) image masks) mask IoU >= 0.98. Returns the
    count checked."""
    boxes, scores, classes = expected
    got_boxes, got_scores, got_classes = got
    cut = scores[-1] if full else -np.inf
    iou = box_iou(boxes, got_boxes) * (classes[:, None] == got_classes[None])
    checked = 0
    for i in range(len(boxes)):
        if not clear(scores, i, tolerance, cut):
            continue
        j = int(iou[i].argmax())
        assert iou[i, j] >= 0.99, f"detection {i} (class {classes[i]}, score {scores[i]:.6g}) not found"
        assert abs(got_scores[j] - scores[i]) <= tolerance, (i, scores[i], got_scores[j], tolerance)
        if masks is not None:
            assert mask_iou(masks[0][i], masks[1][j]) >= 0.98, f"mask of detection {i}"
        checked += 1
    return checked


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_stage_on_the_references_inputs(runs, case):
    run = runs[case[0]]
    tf, off, got, prepared = run["tf"], run["tf_off"], run["ours"], run["ours_prepared"]
    n, m = int(tf["pred/num_proposals"][0]), int(tf["det/num_detections"][0])
    # Proposals from the reference's RPN outputs: decode, softmax, NMS, clip (float32 on both sides).
    expected = tf["pred/proposal_boxes_normalized"][0, :n]
    assert got["tf/proposals/boxes"].shape == expected.shape
    np.testing.assert_allclose(got["tf/proposals/boxes"], expected, rtol=0, atol=ulp_tolerance(expected))
    # The box classifier on the reference's proposals.
    same = np.abs(off["pred/proposal_boxes_normalized"][0, :n] - expected).max() < 1e-6
    assert same, "the reference's proposals with oneDNN off differ: no floor for the box classifier"
    for key, ref in [("box_classifier_features", "box_classifier_features"),
                     ("refined_box_encodings", "refined_box_encodings"), ("class_logits", "class_predictions_with_background")]:
        assert_within_floor(f"{case[0]} {key}", got[f"tf/{key}"], tf[f"pred/{ref}"][:n], off[f"pred/{ref}"][:n],
                            prepared[f"tf/{key}"])
    # Detections from the reference's box classifier outputs.
    mine = detections(got, "tf/")
    tolerance = ulp_tolerance(tf["det/detection_scores"])
    assert match_detections(detections(tf), mine, tolerance, m == 100) >= m // 2
    assert len(mine[0]) == m
    # Mask logits on the reference's detection boxes; masks reframed from the reference's masks.
    same = np.abs(off["det/detection_boxes"][0, :m] - tf["det/detection_boxes"][0, :m]).max() < 1e-6
    if same:
        assert_within_floor(f"{case[0]} mask logits", got["tf/mask_logits"], tf["pred/mask_predictions"][:m],
                            off["pred/mask_predictions"][:m], prepared["tf/mask_logits"])
    np.testing.assert_allclose(got["tf/image_masks"], run["mask_on"], rtol=0, atol=ulp_tolerance(run["mask_on"]))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_whole_model_on_the_image(runs, case):
    run = runs[case[0]]
    tf, off, got, prepared = run["tf"], run["tf_off"], run["ours"], run["ours_prepared"]
    np.testing.assert_allclose(got["preprocessed"], tf["preprocessed"], rtol=0, atol=ulp_tolerance(tf["preprocessed"]))
    np.testing.assert_array_equal(got["anchors"], tf["pred/anchors"])
    for key, ref in [("rpn_box_encodings", "rpn_box_encodings"), ("rpn_objectness", "rpn_objectness_predictions_with_background")]:
        assert_within_floor(f"{case[0]} {key}", got[key], tf[f"pred/{ref}"][0], off[f"pred/{ref}"][0], prepared[key])
    # Proposals: the same boxes, but for those whose objectness is within the tolerance of the cut.
    n = int(tf["pred/num_proposals"][0])
    expected = tf["pred/proposal_boxes_normalized"][0, :n]
    proposals, scores = got["proposals/boxes"], got["proposals/scores"]
    assert len(proposals) == n
    iou = box_iou(proposals, expected).max(1)
    objectness_tolerance = 4 * max(errors(tf["pred/rpn_objectness_predictions_with_background"],
                                          off["pred/rpn_objectness_predictions_with_background"])[0], 1e-6)
    clear_rows = scores > scores[-1] + objectness_tolerance
    assert (iou[clear_rows] >= 0.99).all(), np.flatnonzero(iou < 0.99)
    # Detections and their masks pasted into the image.
    tolerance = score_tolerance(run)
    m = int(tf["det/num_detections"][0])
    checked = match_detections(detections(tf), detections(got), tolerance, m == 100,
                               masks=(run["mask_on"], got["image_masks"]))
    print(f"{case[0]}: {checked} of {m} detections clear of every decision, all found (score tolerance {tolerance:.3g})")
    assert checked >= m // 4
    # The same as mrcnn-infer reports them: pixels (x1, y1, x2, y2), labels from 1, RLE masks.
    height, width = tf["image"].shape[1:3]
    boxes = got["detections/boxes"][:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)
    np.testing.assert_allclose(got["instances/boxes"], boxes, rtol=0, atol=ulp_tolerance(boxes))
    np.testing.assert_array_equal(got["instances/labels"], got["detections/classes"] + 1)
    np.testing.assert_array_equal(got["instances/masks"], got["image_masks"] > 0.5)


def test_a_checkpoint_of_another_shape_is_named_in_one_error(runs):
    """The reference's 3-class checkpoint into a 5-class model: every head of the wrong shape named,
    kernels in our layout (the mask head's automatic depth changes with the classes: 32 -> 64)."""
    tmp = next(iter(runs.values()))["tmp"]
    result = subprocess.run([str(TEST_BIN_DIR / "tfod_dump"), "ref/ckpt-1", "in_fixed320.pt", "out.pt", "--pipeline",
                             "irv2.config", "--classes", "5", "--size", "320"], cwd=tmp, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    message = result.stderr
    assert "the heads do not match the configured TF OD API model: 0 variable(s) missing: []; 0 unmapped: []" in message
    assert ("mask_rcnn_keras_box_predictor/mask_rcnn_class_head/ClassPredictor_dense/kernel [4, 1536] for "
            "class_weight [6, 1536]") in message
    assert "MaskPredictor_conv2d_0/kernel [32, 1536, 3, 3] for mask_conv_0_weight [64, 1536, 3, 3]" in message
    assert "RPNConv" not in message  # the first stage does not depend on the classes
