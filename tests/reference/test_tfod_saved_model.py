"""A TF OD API SavedModel as users make it, in mrcnn (issue 22): the reference model the TF tests
share (mrcnn_testing.tfod_reference_model: its TF2 checkpoint, as training leaves it in
my_model/checkpoint) exported by the OD API's exporter (exporter_lib_v2.export_inference_graph,
input_type image_tensor) with test_tfod_infer's pipeline.config (320 px fixed resizer, 3 classes,
16 proposals); then the commands of docs/migrating-from-tf-od-api.md's "Bring an exported
SavedModel" run as written (import-tf reads exported_model/saved_model and the pipeline.config the
exporter wrote; mrcnn-infer --model), and the same model on the same photo at score 0 against the
SavedModel itself run in TensorFlow (tf.saved_model.load, its serving signature; masks reframed
into the image by the OD API's reframe_box_masks_to_image_masks): every detection away from a
decision found both ways with the same class, box IoU >= 0.99, mask IoU >= 0.98 (both thresholded
at 0.5) and its score within the noise floor plus the results file's rounding. The floor is
measured in the same run: the SavedModel with oneDNN on against off (TF_ENABLE_ONEDNN_OPTS), 4x
the largest score difference of their matched detections."""
import json
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cli.test_tfod_infer import LABEL_MAP, PIPELINE, section_commands
from mrcnn_testing import run_tool, tensorflow_python, tfod_reference_model
from reference.test_inception_parity import run_python
from reference.test_tfod_mask_rcnn_parity import box_iou, clear, mask_iou, ulp_tolerance

SCRIPT = Path(__file__).with_name("tf_tfod_saved_model.py")
ROUNDING = 0.5e-5  # the results file's scores have 5 decimals (eval/instances.cpp)


def saved_model_commands():
    """The mrcnn-* lines of the page's "Bring an exported SavedModel" section, in order."""
    return section_commands("## 9. Bring an exported SavedModel")


def mrcnn(tmp, *args):
    result = run_tool(tmp, *args, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A user's folder after the export: pipeline.config, label_map.pbtxt, photos/, the training
    checkpoint (my_model/checkpoint) and exported_model/; the SavedModel's outputs in TF with oneDNN
    on and off (tf_on.npz, tf_off.npz); the page's commands run, and mrcnn's results at score 0
    (all.json)."""
    model = tfod_reference_model()
    python = tensorflow_python()
    tmp = tmp_path_factory.mktemp("tfod_saved_model")
    (tmp / "pipeline.config").write_text(PIPELINE)
    (tmp / "label_map.pbtxt").write_text(LABEL_MAP)
    (tmp / "photos").mkdir()
    shutil.copy(model / "img0.png", tmp / "photos" / "img0.png")
    (tmp / "my_model").mkdir()
    (tmp / "my_model" / "checkpoint").symlink_to(model / "ckpt")
    run_python(python, [SCRIPT, "export", "pipeline.config", "my_model/checkpoint", "exported_model"], tmp)

    def tf_run(onednn):
        run_python(python, [SCRIPT, "run", "exported_model/saved_model", "photos/img0.png", f"tf_{onednn}.npz"], tmp,
                   TF_ENABLE_ONEDNN_OPTS="1" if onednn == "on" else "0")

    def ours():
        outputs = [mrcnn(tmp, *shlex.split(command)) for command in saved_model_commands()]
        mrcnn(tmp, "mrcnn-infer", "--model", "exported_model.safetensors", "-i", "photos/", "-o", "all.json",
              "--score-threshold", "0")
        return outputs

    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(tf_run, "on"), pool.submit(tf_run, "off"), pool.submit(ours)]
        outputs = jobs[2].result()
        [job.result() for job in jobs[:2]]
    return tmp, outputs


def tf_detections(tmp, name):
    """The SavedModel's detections as (boxes [y1, x1, y2, x2] in pixels, scores, label ids), and its
    masks in the image."""
    d = np.load(tmp / name)
    height, width = d["image"].shape[:2]
    boxes = d["detection_boxes"].astype(np.float64) * [height, width, height, width]
    return (boxes, d["detection_scores"], d["detection_classes"]), d["image_masks"]


def mrcnn_detections(tmp, name):
    """mrcnn-infer's results in tf_detections' form (masks decoded from RLE)."""
    from pycocotools import mask as mask_utils

    results = json.loads((tmp / name).read_text())
    boxes = np.array([[y, x, y + h, x + w] for x, y, w, h in (r["bbox"] for r in results)], np.float64).reshape(-1, 4)
    scores = np.array([r["score"] for r in results], np.float32)
    classes = np.array([r["category_id"] for r in results], np.float32)
    masks = np.stack([mask_utils.decode(r["segmentation"]) for r in results]) if results else np.zeros((0, 1, 1))
    return (boxes, scores, classes), masks


def noise_floor(on, off):
    """4x the largest oneDNN on/off score difference of the SavedModel's matched detections (at
    least a few float32 ulps)."""
    (boxes, scores, classes), (boxes_off, scores_off, classes_off) = on, off
    iou = box_iou(boxes, boxes_off) * (classes[:, None] == classes_off[None])
    best = iou.argmax(1)
    matched = iou[np.arange(len(boxes)), best] >= 0.99
    assert matched.sum() >= len(boxes) // 2, "the SavedModel with oneDNN off finds other detections"
    floor = np.abs(scores[matched] - scores_off[best[matched]]).max(initial=0.0)
    return 4 * max(float(floor), ulp_tolerance(scores))


def found(expected, expected_masks, got, got_masks, noise, tolerance):
    """Every detection of `expected` away from a decision (no other score within 2x noise) found in
    `got`: same class, box IoU >= 0.99, score within tolerance, mask IoU >= 0.98. Returns the
    count checked and the worst box IoU, score error and mask IoU seen."""
    boxes, scores, classes = expected
    iou = box_iou(boxes, got[0]) * (classes[:, None] == got[2][None])
    checked, worst = 0, [1.0, 0.0, 1.0]
    for i in range(len(boxes)):
        if not clear(scores, i, noise, -np.inf):  # 100 detections at most: none cut here (asserted)
            continue
        j = int(iou[i].argmax())
        assert iou[i, j] >= 0.99, f"detection {i} (class {classes[i]}, score {scores[i]:.6g}) not found"
        error, overlap = abs(float(got[1][j]) - float(scores[i])), mask_iou(expected_masks[i], got_masks[j])
        assert error <= tolerance, (i, scores[i], got[1][j], tolerance)
        assert overlap >= 0.98, f"mask of detection {i}: IoU {overlap}"
        checked += 1
        worst = [min(worst[0], iou[i, j]), max(worst[1], error), min(worst[2], overlap)]
    return checked, worst


def test_saved_model_as_the_page_says_gives_tensorflows_detections(exported):
    tmp, outputs = exported
    commands = saved_model_commands()
    assert [c.split()[0:2] for c in commands] == [["mrcnn-config", "import-tf"], ["mrcnn-infer", "--model"]]
    assert "exported_model/saved_model" in commands[0]
    assert [line for line in outputs[0].stderr.splitlines() if "not mapped" in line] == []
    config = json.loads((tmp / "exported_model.json").read_text())
    assert config["model"]["arch"] == "tf_faster_rcnn" and config["model"]["num_classes"] == 4
    assert sorted(p.name for p in (tmp / "exported_overlays").iterdir()) == ["img0.png"]

    on, on_masks = tf_detections(tmp, "tf_on.npz")
    off, _ = tf_detections(tmp, "tf_off.npz")
    ours, our_masks = mrcnn_detections(tmp, "all.json")
    m = len(on[1])
    assert 0 < m < 100, m  # no cut at max_total_detections to be near
    noise = noise_floor(on, off)
    tolerance = noise + ROUNDING
    checked, worst = found(on, on_masks, ours, our_masks, noise, tolerance)
    back, back_worst = found(ours, our_masks, on, on_masks, noise + ROUNDING, tolerance)
    print(f"SavedModel: {m} detections in TF, {len(ours[1])} in mrcnn; {checked} (TF -> mrcnn) and {back} (back) "
          f"away from a decision, all found; worst box IoU {min(worst[0], back_worst[0]):.6f}, score error "
          f"{max(worst[1], back_worst[1]):.3g} (tolerance {tolerance:.3g}: oneDNN floor {noise:.3g} + rounding "
          f"{ROUNDING:.3g}), mask IoU {min(worst[2], back_worst[2]):.6f}")
    assert checked >= m // 2 and back >= len(ours[1]) // 2
    # The page's own run (infer.score_threshold from the config): the same detections, those above it.
    threshold = float(mrcnn(tmp, "mrcnn-config", "get", "exported_model.json", "infer.score_threshold").stdout)
    everything = json.loads((tmp / "all.json").read_text())
    assert json.loads((tmp / "exported_detections.json").read_text()) == [r for r in everything if r["score"] >= threshold]


def test_the_exporters_checkpoint_reads_the_same(exported):
    """exported_model/checkpoint (the exporter's copy, the model under `model` as in training)
    gives the SavedModel's results."""
    tmp, _ = exported
    mrcnn(tmp, "mrcnn-infer", "--config", "exported_model.json", "--weights", "exported_model/checkpoint", "-i",
          "photos/", "-o", "checkpoint.json", "--score-threshold", "0")
    assert (tmp / "checkpoint.json").read_text() == (tmp / "all.json").read_text()
