"""mrcnn-infer, run for real on image files with a small random model: the results format, the
flags, and the bad inputs (each one clear error line, exit 2)."""
import json

import pytest

from mrcnn_testing import sample_images


@pytest.fixture
def images(workdir):
    return sample_images(workdir / "images")


def infer(run, small_model, *args):
    weights, config = small_model
    return run("mrcnn-infer", "--config", config, "--weights", weights, *args)


def test_results_are_coco_records(run, workdir, small_model, images):
    result = infer(run, small_model, "--input", workdir / "images", "-o", "dt.json", "--overlay-dir", "overlays")
    assert result.returncode == 0, result.stderr
    records = json.loads((workdir / "dt.json").read_text())
    assert records, "no detections at all: lower the model's score threshold"
    from PIL import Image
    sizes = {i + 1: Image.open(p).size for i, p in enumerate(sorted(images))}
    for r in records:
        assert set(r) == {"image_id", "file_name", "category_id", "bbox", "score", "segmentation"}
        w, h = sizes[r["image_id"]]
        assert r["file_name"].endswith(f"img{r['image_id'] - 1}.png")
        assert r["category_id"] in (1, 2)
        x, y, bw, bh = r["bbox"]
        assert 0 <= x <= w and 0 <= y <= h and bw >= 0 and bh >= 0 and x + bw <= w + 0.01 and y + bh <= h + 0.01
        assert 0.05 <= r["score"] <= 1
        assert r["segmentation"]["size"] == [h, w]
        assert isinstance(r["segmentation"]["counts"], str)
    scores = [r["score"] for r in records if r["image_id"] == 1]
    assert scores == sorted(scores, reverse=True)
    for p in images:
        overlay = workdir / "overlays" / p.name
        assert overlay.exists() and Image.open(overlay).size == Image.open(p).size
    assert "done: 3 images" in result.stderr


def test_masks_decode_with_pycocotools(run, workdir, small_model, images):
    mask_api = pytest.importorskip("pycocotools.mask")
    assert infer(run, small_model, "-i", *images, "-o", "dt.json").returncode == 0
    for r in json.loads((workdir / "dt.json").read_text()):
        rle = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
        mask = mask_api.decode(rle)
        assert mask.shape == tuple(r["segmentation"]["size"])
        assert int(mask.sum()) == int(mask_api.area(rle))
        if mask.sum():  # the mask lies inside (a slightly grown copy of) its box
            x, y, w, h = mask_api.toBbox(rle)
            bx, by, bw, bh = r["bbox"]
            assert x >= bx - 0.1 * bw - 2 and x + w <= bx + 1.1 * bw + 2


def test_score_threshold_and_globs(run, workdir, small_model, images):
    assert infer(run, small_model, "-i", str(workdir / "images" / "*.png"), "-o", "all.json").returncode == 0
    assert infer(run, small_model, "-i", str(workdir / "images" / "*.png"), "-o", "high.json",
                 "--score-threshold", "0.5").returncode == 0
    everything = json.loads((workdir / "all.json").read_text())
    high = json.loads((workdir / "high.json").read_text())
    assert all(r["score"] >= 0.5 for r in high)
    assert len(high) == sum(r["score"] >= 0.5 for r in everything)


def test_coco_image_list_keeps_ids(run, workdir, small_model, images):
    coco = {"images": [{"id": 42, "file_name": images[1].name}, {"id": 7, "file_name": images[0].name}],
            "annotations": [], "categories": [{"id": 1, "name": "pedestrian"}]}
    (workdir / "gt.json").write_text(json.dumps(coco))
    result = infer(run, small_model, "--coco", "gt.json", "--image-root", "images", "-o", "dt.json",
                   "--batch-size", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    records = json.loads((workdir / "dt.json").read_text())
    assert {r["image_id"] for r in records} <= {42, 7} and records
    assert all("file_name" not in r for r in records)


def test_corrupt_image_fails_or_is_skipped(run, workdir, small_model, images):
    (workdir / "images" / "broken.png").write_bytes(b"this is not a png")
    result = infer(run, small_model, "-i", "images", "-o", "dt.json")
    assert result.returncode == 2
    assert "images/broken.png: cannot decode image" in result.stderr
    assert not (workdir / "dt.json").exists()
    result = infer(run, small_model, "-i", "images", "-o", "dt.json", "--on-error", "skip")
    assert result.returncode == 0, result.stderr
    assert "skipped: images/broken.png: cannot decode image" in result.stderr
    assert "1 skipped" in result.stderr
    assert {r["image_id"] for r in json.loads((workdir / "dt.json").read_text())} <= {1, 2, 3, 4}


@pytest.mark.parametrize("case", ["empty folder", "missing input", "no glob match", "no input"])
def test_bad_image_inputs(run, workdir, small_model, case):
    (workdir / "empty").mkdir()
    args = {"empty folder": ["-i", "empty"], "missing input": ["-i", "nope.png"],
            "no glob match": ["-i", "empty/*.jpg"], "no input": []}[case]
    message = {"empty folder": "empty: folder holds no image files", "missing input": "nope.png: no such file",
               "no glob match": "empty/*.jpg: the pattern matches no files",
               "no input": "give the images with --input, --coco or --dataset"}[case]
    result = infer(run, small_model, *args, "-o", "dt.json")
    assert result.returncode == 2
    assert message in result.stderr


def test_missing_and_foreign_weights(run, workdir, small_model, images):
    weights, config = small_model
    result = run("mrcnn-infer", "-c", config, "-w", "missing.pth", "-i", images[0], "-o", "dt.json")
    assert result.returncode == 2 and "missing.pth: cannot read: no such file" in result.stderr
    (workdir / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    result = run("mrcnn-infer", "-c", config, "-w", "junk.safetensors", "-i", images[0], "-o", "dt.json")
    assert result.returncode == 2 and "junk.safetensors: not a valid safetensors file" in result.stderr
    # ResNet-18 weights for a ResNet-50 model: another architecture.
    (workdir / "r50.json").write_text(json.dumps({"model": {"num_classes": 3}}))
    result = run("mrcnn-infer", "-c", "r50.json", "-w", weights, "-i", images[0], "-o", "dt.json")
    assert result.returncode == 2
    assert "weights do not fit this model" in result.stderr
    assert "shape mismatch: backbone.body.layer1.0.conv1.weight: expected [64, 64, 1, 1], found [64, 64, 3, 3]" \
        in result.stderr


def test_num_classes_disagreeing_with_weights(run, workdir, small_model, images):
    weights, config = small_model
    cfg = json.loads(config.read_text())
    cfg["model"]["num_classes"] = 5
    (workdir / "c5.json").write_text(json.dumps(cfg))
    result = run("mrcnn-infer", "-c", "c5.json", "-w", weights, "-i", images[0], "-o", "dt.json")
    assert result.returncode == 2
    assert "roi_heads.box_predictor.cls_score.weight: expected [5, 1024], found [3, 1024]" in result.stderr
    assert "does model.num_classes match the weights?" in result.stderr
    result = run("mrcnn-infer", "-c", "c5.json", "-w", weights, "-i", images[0], "-o", "dt.json", "--allow-partial")
    assert result.returncode == 0, result.stderr
    assert "skipped 6 with other shapes" in result.stderr


def test_unwritable_output_fails_before_inference(run, workdir, small_model, images):
    (workdir / "out").mkdir()
    for target, message in (("out", "out: cannot write: it is a directory"),
                            ("nowhere/dt.json", "nowhere/dt.json: cannot write: directory 'nowhere' does not exist")):
        result = infer(run, small_model, "-i", images[0], "-o", target)
        assert result.returncode == 2 and message in result.stderr
        assert "inference:" not in result.stderr


def test_label_map_errors_name_the_line(run, workdir, small_model, images):
    (workdir / "labels.pbtxt").write_text("item {\n  id: 1\n  name: 'person'\n}\nitem {\n  id: one\n}\n")
    result = infer(run, small_model, "-i", images[0], "-o", "dt.json", "--label-map", "labels.pbtxt")
    assert result.returncode == 2
    assert "labels.pbtxt:6: id: expected an integer, found 'one'" in result.stderr


def test_cuda_without_gpu(run, small_model, images):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = infer(run, small_model, "-i", images[0], "-o", "dt.json", "--device", "cuda")
    assert result.returncode == 2
    assert "device 'cuda:0': no CUDA GPU is available here" in result.stderr


def test_save_model_waits_for_a_valid_request(run, workdir, small_model, images):
    """--save-model with images to run: the request is checked whole before the model file is written."""
    from mrcnn_testing import assert_one_error, read_safetensors_metadata

    for args, message in (((), "give the images with --input, --coco or --dataset"),
                          (("-i", images[0]), "nowhere/dt.json: cannot write: directory 'nowhere' does not exist")):
        output = "dt.json" if not args else "nowhere/dt.json"
        result = infer(run, small_model, *args, "-o", output, "--save-model", "m.safetensors")
        assert_one_error(result, "mrcnn-infer", message)
        assert not (workdir / "m.safetensors").exists()
    result = infer(run, small_model, "--save-model", "m.safetensors")  # only --save-model: no images needed
    assert result.returncode == 0, result.stderr
    assert read_safetensors_metadata(workdir / "m.safetensors")["format"] == "mrcnn model"


def test_save_model_waits_for_the_job_and_the_detector(run, workdir, small_model, images):
    """What only building the job (the images, overlay bands) or the Detector (precision on this
    device) finds wrong is found before --save-model writes: no model file is left behind."""
    from mrcnn_testing import assert_one_error

    for args, message in (
            (("-i", "no_such_folder/*.png"), "no_such_folder/*.png"),
            (("-i", images[0], "--overlay-dir", "o", "--overlay-bands", "7"), "--overlay-bands: names channel 7"),
            (("-i", images[0], "--device", "cpu", "--precision", "fp16"), "precision fp16 needs a CUDA device")):
        result = infer(run, small_model, *args, "-o", "dt.json", "--save-model", "m.safetensors")
        assert_one_error(result, "mrcnn-infer", message)
        assert not (workdir / "m.safetensors").exists(), args
        assert not (workdir / "dt.json").exists(), args



def test_save_model_refuses_a_file_the_run_reads_or_writes(run, workdir, small_model, images):
    """--save-model naming the --output, --weights or --model file (by another spelling, through a
    symbolic link, or not yet existing) is one error before anything is written, --force or not: it
    overwrote the results, or the weights it was read from."""
    import os
    import shutil

    from mrcnn_testing import assert_one_error

    weights, config = small_model
    shutil.copy(weights, workdir / "w.pth")
    os.symlink("w.pth", workdir / "link.pth")
    original = (workdir / "w.pth").read_bytes()
    with_weights = ("--config", config, "--weights")
    for args, same in (
            ((*with_weights, "w.pth", "-i", images[0], "-o", "dt.json", "--save-model", "./dt.json"), "--output dt.json"),
            ((*with_weights, "w.pth", "--save-model", "link.pth", "--force"), "--weights w.pth"),
            ((*with_weights, "link.pth", "--save-model", str(workdir / "w.pth"), "--force"), "--weights link.pth")):
        assert_one_error(run("mrcnn-infer", *args), "mrcnn-infer", "--save-model ", f"the same file as {same}")
        assert not (workdir / "dt.json").exists(), args
        assert (workdir / "w.pth").read_bytes() == original, args
    # A TF checkpoint given by its prefix: its .index and data shards are its files too (refused
    # before the checkpoint is read, so these stand-ins never are).
    (workdir / "ckpt.index").write_bytes(b"index")
    (workdir / "ckpt.data-00000-of-00001").write_bytes(b"data")
    for target in ("ckpt.index", "./ckpt.data-00000-of-00001"):
        result = run("mrcnn-infer", *with_weights, "ckpt", "--save-model", target, "--force")
        assert_one_error(result, "mrcnn-infer", f"--save-model {target}: a file of the TF checkpoint --weights ckpt")
    assert (workdir / "ckpt.index").read_bytes() == b"index"
    assert (workdir / "ckpt.data-00000-of-00001").read_bytes() == b"data"
    assert run("mrcnn-infer", *with_weights, "w.pth", "--save-model", "m.safetensors").returncode == 0
    model = (workdir / "m.safetensors").read_bytes()
    result = run("mrcnn-infer", "--model", "m.safetensors", "--save-model", "./m.safetensors", "--force")
    assert_one_error(result, "mrcnn-infer", "the same file as --model m.safetensors")
    assert (workdir / "m.safetensors").read_bytes() == model

def test_save_model_keeps_an_existing_file_without_force(run, workdir, small_model):
    """As import-tf: an existing --save-model file is refused, untouched, unless --force."""
    from mrcnn_testing import assert_one_error

    (workdir / "m.safetensors").write_bytes(b"the user's own file")
    result = infer(run, small_model, "--save-model", "m.safetensors")
    assert_one_error(result, "mrcnn-infer", "m.safetensors: already exists (use --force to overwrite)")
    assert (workdir / "m.safetensors").read_bytes() == b"the user's own file"
    result = infer(run, small_model, "--save-model", "m.safetensors", "--force")
    assert result.returncode == 0, result.stderr
    assert (workdir / "m.safetensors").read_bytes() != b"the user's own file"
