"""Tools that run other tools as child processes (mrcnn-eval --config runs mrcnn-config export-coco
and mrcnn-infer; mrcnn-config import-tf --checkpoint runs mrcnn-infer --save-model): a child's
failure reaches the user as one error line under the command they typed, naming the child."""
import json

from cli.test_tf_checkpoint import IRV2_CONFIG
from mrcnn_testing import assert_one_error, run_tool, sample_images, write_mask_pngs


def coco_val_config(workdir, config, categories):
    """workdir/c.json: the small model's configuration evaluated on 3 photos with COCO ground truth
    naming these category ids."""
    from PIL import Image

    paths = sample_images(workdir / "val")
    gt = {"images": [], "annotations": [], "categories": [{"id": c, "name": f"c{c}"} for c in categories]}
    for i, p in enumerate(paths, 1):
        w, h = Image.open(p).size
        gt["images"].append({"id": i, "file_name": p.name, "height": h, "width": w})
        gt["annotations"].append({"id": i, "image_id": i, "category_id": categories[0], "bbox": [10, 10, 50, 80],
                                  "area": 4000, "iscrowd": 0})
    (workdir / "val.json").write_text(json.dumps(gt))
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": {"format": "coco", "annotations": "val.json", "images": "val"}}
    cfg["eval"] = {"device": "cpu"}
    (workdir / "c.json").write_text(json.dumps(cfg))
    return "c.json"


def mask_png_val_config(workdir, config, images=3):
    """workdir/m.json: the small model's configuration evaluated on a mask_png set (its ground truth
    made by the export-coco child)."""
    write_mask_pngs(workdir, [(96, 96, [(10, 10, 60, 70)])] * images)
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": {"format": "mask_png", "images": "png_images", "annotations": "png_masks"}}
    cfg["eval"] = {"device": "cpu"}
    (workdir / "m.json").write_text(json.dumps(cfg))
    return "m.json"


def temp_dir(workdir):
    folder = workdir / "tmp"
    folder.mkdir()
    return folder


def test_failing_inference_child_is_one_line(workdir, small_model):
    weights, config = small_model
    coco_val_config(workdir, config, [1, 2])
    (workdir / "bad.pth").write_bytes(b"not weights at all")
    tmp = temp_dir(workdir)
    result = run_tool(workdir, "mrcnn-eval", "--config", "c.json", "--weights", "bad.pth", timeout=120,
                      env={"TMPDIR": str(tmp)})
    assert_one_error(result, "mrcnn-eval", "mrcnn-eval: error: mrcnn-infer: ", "bad.pth")
    assert list(tmp.iterdir()) == []


def test_failing_ground_truth_child_is_one_line(workdir, small_model):
    weights, config = small_model
    mask_png_val_config(workdir, config)
    cfg = json.loads((workdir / "m.json").read_text())
    cfg["data"]["val"]["annotations"] = "no_masks"
    (workdir / "m.json").write_text(json.dumps(cfg))
    tmp = temp_dir(workdir)
    result = run_tool(workdir, "mrcnn-eval", "--config", "m.json", "--weights", weights, timeout=120,
                      env={"TMPDIR": str(tmp)})
    assert_one_error(result, "mrcnn-eval", "mrcnn-eval: error: mrcnn-config: ", "no_masks")
    assert list(tmp.iterdir()) == []


def test_failing_conversion_is_one_line(workdir):
    """import-tf --checkpoint: the child mrcnn-infer's reason is the one line; the configuration
    written before stays."""
    (workdir / "pipeline.config").write_text(IRV2_CONFIG)
    result = run_tool(workdir, "mrcnn-config", "import-tf", "pipeline.config", "-o", "tf.json", "--checkpoint",
                      "no_such_checkpoint", "--save-model", "tf.safetensors", timeout=300)
    assert_one_error(result, "mrcnn-config", "mrcnn-config: error: mrcnn-infer: ", "no_such_checkpoint")
    assert (workdir / "tf.json").exists() and not (workdir / "tf.safetensors").exists()
