"""The TF OD API family from a user's files to detections (issue 22): the commands of
docs/migrating-from-tf-od-api.md's "Bring your trained model", run as written on the reference's
seeded model (../shared/tfod-reference: its pipeline.config, cut to a 320 px fixed resizer, 16
proposals and 3 classes, and the TF2 checkpoint the TF tests share, mrcnn_testing.tfod_reference_model,
made at 64 proposals, which no variable depends on) and a Penn-Fudan photo: import-tf, then
mrcnn-infer on the checkpoint writing a self-contained model, then mrcnn-infer --model (and the
same through import-tf --checkpoint). The
detections equal those of tests/tools/tfod_dump (the same checkpoint, pipeline and photo, prepared
as for inference) up to the rounding of the results file, masks exactly. And what the family
refuses, each with one error line: a pipeline field it does not support, settings it cannot run,
bf16, tiles (infer.precision auto, the default, is fp32 for this family)."""
import json
import re
import shlex
import subprocess

import numpy as np
import pytest

from cli.test_tf_checkpoint import IRV2_CONFIG
from mrcnn_testing import (SOURCE_DIR, TEST_BIN_DIR, TFOD_MODEL_CLASSES, TFOD_MODEL_SIZE, assert_one_error,
                           sample_images, tfod_reference_model)

DOC = SOURCE_DIR / "docs" / "migrating-from-tf-od-api.md"
SIZE, PROPOSALS, CLASSES = TFOD_MODEL_SIZE, 16, TFOD_MODEL_CLASSES
# The published model block made cheap through the pipeline itself, as a user's own would be.
PIPELINE = (IRV2_CONFIG.replace("height: 1024 width: 1024", f"height: {SIZE} width: {SIZE}")
            .replace("num_classes: 90", f"num_classes: {CLASSES}")
            .replace("first_stage_max_proposals: 300", f"first_stage_max_proposals: {PROPOSALS}"))
LABEL_MAP = "item { id: 1 name: 'person' } item { id: 2 name: 'bike' } item { id: 3 name: 'dog' }\n"


def section_commands(heading="## 8. Bring your trained model"):
    """The mrcnn-* lines of the page's section under `heading`, in order."""
    text = DOC.read_text()
    section = text[text.index(heading):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return [line for block in re.findall(r"```text\n(.*?)```", section, re.S)
            for line in block.splitlines() if line.startswith("mrcnn-")]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A user's folder: pipeline.config, label_map.pbtxt, photos/ and the TF2 checkpoint the
    reference trains nothing into but seeds, perturbs and calibrates (my_model/checkpoint/ckpt-1)."""
    model = tfod_reference_model()
    tmp = tmp_path_factory.mktemp("tfod_user")
    (tmp / "pipeline.config").write_text(PIPELINE)
    (tmp / "label_map.pbtxt").write_text(LABEL_MAP)
    [image] = sample_images(tmp / "photos", 1)
    write_photo_annotations(tmp / "photos.json", image)
    (tmp / "my_model").mkdir()
    (tmp / "my_model" / "checkpoint").symlink_to(model / "ckpt")
    return tmp, image


def write_photo_annotations(path, image):
    """photos.json: the photo as a COCO training set, one 'person' (id 1 of the label map) as a box."""
    from PIL import Image

    width, height = Image.open(image).size
    x, y, w, h = width // 4, height // 4, width // 2, height // 2
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": image.name, "width": width, "height": height}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                         "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bike"}, {"id": 3, "name": "dog"}]}))


def tfod_dump_instances(tmp, image):
    """tests/tools/tfod_dump's instances (what mrcnn-infer reports) for the photo, at score 0."""
    torch = pytest.importorskip("torch")
    from PIL import Image

    pixels = np.asarray(Image.open(image).convert("RGB"), dtype=np.float32)[None]
    torch.save({"image": torch.from_numpy(np.ascontiguousarray(pixels))}, tmp / "in.pt")
    result = subprocess.run([str(TEST_BIN_DIR / "tfod_dump"), "my_model/checkpoint/ckpt-1", "in.pt", "out.pt",
                             "--pipeline", "pipeline.config", "--prepare"],
                            cwd=tmp, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = torch.load(tmp / "out.pt", weights_only=False)
    return {k.split("/")[1]: v.numpy() for k, v in out.items() if k.startswith("instances/")}


def assert_same_detections(results, expected, threshold):
    """COCO results of one image against tfod_dump's instances scoring at least threshold: same
    order, labels, masks; boxes and scores within the rounding of the results file."""
    from pycocotools import mask as mask_utils

    assert len(results) == int((expected["scores"] >= threshold).sum()), (len(results), expected["scores"][:5])
    for i, r in enumerate(results):
        x1, y1, x2, y2 = expected["boxes"][i]
        assert r["category_id"] == expected["labels"][i], i
        assert np.allclose(r["bbox"], [x1, y1, x2 - x1, y2 - y1], rtol=0, atol=0.01), (i, r["bbox"])
        assert abs(r["score"] - expected["scores"][i]) <= 1e-5, i
        assert np.array_equal(mask_utils.decode(r["segmentation"]), expected["masks"][i]), i


def test_bring_your_trained_model_as_the_page_says(run, user_files):
    tmp, image = user_files
    commands = section_commands()
    assert [c.split()[0:2] for c in commands] == [["mrcnn-config", "import-tf"], ["mrcnn-infer", "--config"],
                                                  ["mrcnn-infer", "--model"], ["mrcnn-config", "set"],
                                                  ["mrcnn-train", "--config"], ["mrcnn-infer", "--model"]]
    run.cwd = tmp
    outputs = [run(*shlex.split(command), timeout=900) for command in commands]
    for command, result in zip(commands, outputs):
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    assert [line for line in outputs[0].stderr.splitlines() if "not mapped" in line] == []
    config = json.loads((tmp / "my_model.json").read_text())
    assert config["model"]["arch"] == "tf_faster_rcnn" and config["model"]["num_classes"] == CLASSES + 1
    assert config["model"]["tf"]["resizer"] == {"type": "fixed_shape", "height": SIZE, "width": SIZE}
    # Training from the checkpoint (detection: the class-dependent layers start fresh, named).
    assert "fine_tune_checkpoint_type detection" in outputs[4].stderr
    assert "re-initialised class_weight" in outputs[4].stderr and "re-initialised rpn_conv_weight" not in outputs[4].stderr
    assert isinstance(json.loads((tmp / "trained.json").read_text()), list)
    # Onto 2 classes from the TF checkpoint: exactly the class-dependent layers start fresh.
    (tmp / "two.pbtxt").write_text("item { id: 1 name: 'person' } item { id: 2 name: 'bike' }\n")
    photos = json.loads((tmp / "photos.json").read_text())
    photos["categories"] = photos["categories"][:2]
    (tmp / "photos_two.json").write_text(json.dumps(photos))
    two = run("mrcnn-config", "set", "my_training.json", "model.num_classes=3", "train.steps=1",
              "data.train.label_map=two.pbtxt", "data.train.annotations=photos_two.json", "-o", "two.json")
    assert two.returncode == 0, two.stderr
    tuned = run("mrcnn-train", "--config", "two.json", "--output-dir", "runs/two", "--init-weights",
                "my_model/checkpoint/ckpt-1", "--device", "cpu", timeout=900)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    fresh = sorted(re.findall(r"re-initialised (\S+)$", tuned.stderr, re.M))
    assert fresh == ["box_bias", "box_weight", "class_bias", "class_weight", "mask_last_bias", "mask_last_weight"]

    expected = tfod_dump_instances(tmp, image)
    everything = run("mrcnn-infer", "--model", "my_model.safetensors", "-i", "photos/", "-o", "all.json",
                     "--score-threshold", "0", timeout=900)
    assert everything.returncode == 0, everything.stderr
    # infer.precision auto (the default) is fp32 for this family on every machine, and says why.
    assert "precision auto: fp32 (the TF OD API family, model.arch tf_faster_rcnn, runs in fp32 only)" \
        in everything.stderr, everything.stderr[-2000:]
    assert len(expected["scores"]) > 0
    assert_same_detections(json.loads((tmp / "all.json").read_text()), expected, 0.0)
    threshold = float(run("mrcnn-config", "get", "my_model.json", "infer.score_threshold").stdout)
    assert_same_detections(json.loads((tmp / "detections.json").read_text()), expected, threshold)
    assert sorted(p.name for p in (tmp / "overlays").iterdir()) == ["img0.png"]
    # The checkpoint itself and the converted model give the same results.
    direct = run("mrcnn-infer", "--config", "my_model.json", "--weights", "my_model/checkpoint", "-i", "photos/",
                 "-o", "direct.json", "--score-threshold", "0", timeout=900)
    assert direct.returncode == 0, direct.stderr
    assert (tmp / "direct.json").read_text() == (tmp / "all.json").read_text()
    # Or in one command: import-tf converts the checkpoint through mrcnn-infer --save-model.
    one = run("mrcnn-config", "import-tf", "pipeline.config", "--label-map", "label_map.pbtxt", "-o", "one.json",
              "--checkpoint", "my_model/checkpoint", "--save-model", "one.safetensors", timeout=900)
    assert one.returncode == 0, one.stderr
    again = run("mrcnn-infer", "--model", "one.safetensors", "-i", "photos/", "-o", "one.json.dt", "--score-threshold",
                "0", timeout=900)
    assert again.returncode == 0, again.stderr
    assert (tmp / "one.json.dt").read_text() == (tmp / "all.json").read_text()

    tiled = run("mrcnn-infer", "--model", "my_model.safetensors", "-i", "photos/", "-o", "t.json", "--tile", "256",
                "--save-model", "tiled.safetensors")
    assert_one_error(tiled, "mrcnn-infer", "--tile", "tf_faster_rcnn")
    assert not (tmp / "tiled.safetensors").exists()  # refused before --save-model wrote
    wrong = run("mrcnn-config", "set", "my_model.json", "model.num_classes=6", "-o", "wrong.json")
    assert wrong.returncode == 0
    refused = run("mrcnn-infer", "-c", "wrong.json", "-w", "my_model/checkpoint/ckpt-1", "-i", "photos/", "-o", "w.json")
    assert_one_error(refused, "mrcnn-infer", "ClassPredictor_dense", "[4, 1536] for class_weight [6, 1536]")


def test_published_pipeline_leaves_no_model_field_unmapped(run, workdir):
    (workdir / "pipeline.config").write_text(IRV2_CONFIG + "train_config { batch_size: 2 num_steps: 50000 }\n")
    result = run("mrcnn-config", "-v", "import-tf", "pipeline.config", "-o", "tf.json")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "not mapped" in line] == []
    assert "resize_masks: training only, passed over" in result.stderr
    model = json.loads((workdir / "tf.json").read_text())["model"]
    assert model["arch"] == "tf_faster_rcnn" and model["num_classes"] == 91
    tf = model["tf"]
    assert tf["number_of_stages"] == 3 and tf["initial_crop_size"] == 17
    assert tf["anchors"]["scales"] == [0.25, 0.5, 1.0, 2.0] and tf["anchors"]["height_stride"] == 16
    assert tf["box_predictor"]["mask_height"] == 33 and tf["box_predictor"]["mask_conv_depth"] == 0
    assert tf["second_stage"]["score_converter"] == "SOFTMAX" and tf["second_stage"]["iou_threshold"] == 0.6
    # The samplers and loss weights (training): the config's, else the OD API's proto defaults.
    assert tf["first_stage"]["localization_loss_weight"] == 2.0 and tf["second_stage"]["mask_loss_weight"] == 4.0
    assert tf["first_stage"]["minibatch_size"] == 256 and tf["second_stage"]["balance_fraction"] == 0.25
    assert run("mrcnn-config", "validate", "tf.json").returncode == 0


def test_unsupported_pipeline_field_is_one_error(run, workdir):
    (workdir / "pipeline.config").write_text(
        IRV2_CONFIG.replace("predict_instance_masks: true", "predict_instance_masks: true convolve_then_upsample_masks: true"))
    result = run("mrcnn-config", "import-tf", "pipeline.config", "-o", "tf.json")
    assert_one_error(result, "mrcnn-config", "pipeline.config: 1 field(s)",
                     "mask_rcnn_box_predictor.convolve_then_upsample_masks: true is not supported")
    assert not (workdir / "tf.json").exists()


def test_settings_the_family_cannot_run_name_the_key(run, workdir):
    """Refused when the configuration is read (its checks name the key), before any weights are read
    (there are none here)."""
    sample_images(workdir / "photos", 1)
    config = {"model": {"arch": "tf_faster_rcnn", "num_classes": 4, "tf": {"resizer": {
        "type": "keep_aspect_ratio", "min_dimension": 800, "max_dimension": 600}}}}
    (workdir / "c.json").write_text(json.dumps(config))
    result = run("mrcnn-infer", "-c", "c.json", "-w", "none", "-i", "photos/", "-o", "dt.json")
    assert_one_error(result, "mrcnn-infer", "model.tf.resizer.min_dimension: 800 is above model.tf.resizer.max_dimension")
    config["model"]["tf"] = {"maxpool_kernel_size": 2, "maxpool_stride": 0}
    (workdir / "c.json").write_text(json.dumps(config))
    result = run("mrcnn-infer", "-c", "c.json", "-w", "none", "-i", "photos/", "-o", "dt.json")
    assert_one_error(result, "mrcnn-infer", "model.tf.maxpool_stride: 0")
    config["model"]["tf"] = {"number_of_stages": 1}
    (workdir / "c.json").write_text(json.dumps(config))
    result = run("mrcnn-config", "validate", "c.json")
    assert_one_error(result, "mrcnn-config", "c.json: model.tf.number_of_stages: 1 (proposals only) gives no detections")
    result = run("mrcnn-infer", "-c", "c.json", "-w", "none", "-i", "photos/", "-o", "dt.json")
    assert_one_error(result, "mrcnn-infer", "c.json: model.tf.number_of_stages: 1")
    config["model"]["tf"] = {}
    (workdir / "c.json").write_text(json.dumps(config))
    result = run("mrcnn-infer", "-c", "c.json", "-w", "none", "-i", "photos/", "-o", "dt.json", "--precision", "bf16")
    assert_one_error(result, "mrcnn-infer", "--precision / infer.precision bf16", "fp32 only")
    # The same two refusals as configuration keys: at load, naming the key, before any model is built.
    for infer, fragment in (({"precision": "bf16"}, "infer.precision: bf16"), ({"tile": {"size": 512}}, "infer.tile.size: 512")):
        config["infer"] = infer
        (workdir / "c.json").write_text(json.dumps(config))
        result = run("mrcnn-config", "validate", "c.json")
        assert_one_error(result, "mrcnn-config", f"c.json: {fragment}", "TF OD API family")
    del config["infer"]


def test_anchors_refuse_the_family_they_do_not_fit(run, workdir):
    """Anchor fitting reads the torchvision family's keys: with model.arch tf_faster_rcnn it would
    silently work on another model, so it refuses it by name (mrcnn-train trains the family:
    tests/cli/test_tfod_train.py)."""
    sample_images(workdir / "photos", 1)
    config = {"model": {"arch": "tf_faster_rcnn", "num_classes": 4},
              "data": {"train": {"format": "coco", "images": "photos", "annotations": "train.json"}}}
    (workdir / "c.json").write_text(json.dumps(config))
    result = run("mrcnn-config", "anchors", "c.json")
    assert_one_error(result, "mrcnn-config", "model.arch: tf_faster_rcnn", "model.tf.anchors")
