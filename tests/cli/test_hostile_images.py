"""Hostile image inputs and output places, through the real tools: FIFOs given as inputs, images
too elongated for the model, decompression bombs (in files and in TFRecords), --on-error skip over
all of them, output folders that cannot be created, drawn images with the same file name, null
validation scores in metrics.jsonl. Each bad input ends in exit 2 with one error line naming it,
within seconds; every run has a timeout, so a hang fails."""
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mrcnn_testing import assert_one_error, run_tool

# Address space for runs that meet a decompression bomb: the tools run in it, a decoded
# 20k x 20k image (1.2 GB, then as much again in RGB) does not.
BOMB_ADDRESS_SPACE = 8 << 30


def assert_refused(result, tool, *needles):
    """The one error line (assert_one_error), and no resize text from the library on stderr."""
    assert_one_error(result, tool, *needles)
    assert "Input and output sizes" not in result.stderr


def infer(workdir, small_model, *args, **kwargs):
    weights, config = small_model
    return run_tool(workdir, "mrcnn-infer", "--config", config, "--weights", weights, *args, **kwargs)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width=20000, height=20000):
    """A valid grayscale PNG of width x height zero pixels in a few hundred KB."""
    compressor = zlib.compressobj(9)
    rows = b"\0" * ((width + 1) * 1000)  # each row: filter byte 0, then the pixels
    parts = [compressor.compress(rows) for _ in range(height // 1000)]
    parts += [compressor.compress(b"\0" * ((width + 1) * (height % 1000))), compressor.flush()]
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(parts)) +
            png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bomb_bytes():
    return png_bomb()


def save_image(path, height, width, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def fifo(path):
    os.mkfifo(path)
    return path


# --- 1. FIFOs: only regular files are read --------------------------------------------------

def test_fifo_as_an_image_is_refused(workdir, small_model):
    pipe = fifo(workdir / "pipe.png")
    assert_refused(infer(workdir, small_model, "-i", pipe, "-o", "dt.json"), "mrcnn-infer", "pipe.png", "FIFO")


def test_fifo_as_config_label_map_coco_is_refused(workdir, small_model):
    weights, config = small_model
    save_image(workdir / "images" / "a.png", 60, 80)
    pipe = fifo(workdir / "pipe.json")
    assert_refused(run_tool(workdir, "mrcnn-infer", "--config", pipe, "--weights", weights, "-i", "images",
                            "-o", "dt.json"), "mrcnn-infer", "pipe.json", "FIFO")
    assert_refused(infer(workdir, small_model, "-i", "images", "-o", "dt.json", "--label-map", pipe),
                   "mrcnn-infer", "pipe.json", "FIFO")
    assert_refused(infer(workdir, small_model, "--coco", pipe, "--image-root", "images", "-o", "dt.json"),
                   "mrcnn-infer", "pipe.json", "FIFO")


def test_fifo_as_eval_and_visualize_inputs_is_refused(workdir):
    pipe = fifo(workdir / "pipe.json")
    (workdir / "gt.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert_refused(run_tool(workdir, "mrcnn-eval", "--gt", pipe, "--dt", "gt.json"), "mrcnn-eval", "pipe.json")
    assert_refused(run_tool(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", pipe), "mrcnn-eval", "pipe.json")
    assert_refused(run_tool(workdir, "mrcnn-visualize", "curves", "--metrics", pipe, "-o", "c.png"),
                   "mrcnn-visualize", "pipe.json", "FIFO")
    save_image(workdir / "images" / "a.png", 60, 80)
    assert_refused(run_tool(workdir, "mrcnn-visualize", "detections", "--images", "images", "--results", pipe,
                            "-o", "out"), "mrcnn-visualize", "pipe.json", "FIFO")


def test_fifo_as_weights_is_refused(workdir, small_model):
    _, config = small_model
    save_image(workdir / "images" / "a.png", 60, 80)
    pipe = fifo(workdir / "pipe.pth")
    assert_refused(run_tool(workdir, "mrcnn-infer", "--config", config, "--weights", pipe, "-i", "images",
                            "-o", "dt.json"), "mrcnn-infer", "pipe.pth")


def test_fifo_in_an_input_folder_is_left_out(workdir, small_model):
    save_image(workdir / "images" / "a.png", 60, 80)
    fifo(workdir / "images" / "b.png")
    result = infer(workdir, small_model, "-i", "images", "-o", "dt.json")
    assert result.returncode == 0, result.stderr
    assert "b.png: skipped: not a regular file" in result.stderr
    assert "done: 1 images" in result.stderr


# --- 2. Images too elongated for the model --------------------------------------------------

def test_torchvision_fails_on_the_same_elongated_images():
    """The decision to refuse them: torchvision's transform cannot resize them either."""
    torch = pytest.importorskip("torch")
    transform_module = pytest.importorskip("torchvision.models.detection.transform")
    transform = transform_module.GeneralizedRCNNTransform(800, 1333, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    transform.eval()
    for shape in ((3, 1, 4000), (3, 4000, 1)):
        with pytest.raises(RuntimeError, match="greater than 0"):
            transform([torch.zeros(shape)])


@pytest.mark.parametrize("height,width", [(1, 4000), (4000, 1)])
def test_elongated_image_is_one_clear_error(workdir, small_model, height, width):
    path = save_image(workdir / "thin.png", height, width)
    result = infer(workdir, small_model, "-i", path, "-o", "dt.json")
    assert_refused(result, "mrcnn-infer", "thin.png", f"{width}x{height}", "too elongated", "model.max_size")


def test_elongated_image_within_the_limit_is_processed(workdir, small_model):
    # The small model's max_size is 200: 4 x 800 resizes to 1 x 200.
    save_image(workdir / "images" / "long.png", 4, 800)
    result = infer(workdir, small_model, "-i", "images", "-o", "dt.json")
    assert result.returncode == 0, result.stderr
    assert "done: 1 images" in result.stderr


# --- 3. Decompression bombs -------------------------------------------------------------------

def test_png_bomb_is_refused_before_decoding(workdir, small_model, bomb_bytes):
    (workdir / "bomb.png").write_bytes(bomb_bytes)
    result = infer(workdir, small_model, "-i", "bomb.png", "-o", "dt.json", address_space=BOMB_ADDRESS_SPACE)
    assert_refused(result, "mrcnn-infer", "bomb.png", "20000x20000", "178956970", "--max-image-pixels")
    result = run_tool(workdir, "mrcnn-visualize", "grid", "--images", "bomb.png", "-o", "sheet.png",
                      address_space=BOMB_ADDRESS_SPACE)
    assert_refused(result, "mrcnn-visualize", "bomb.png", "20000x20000")


@pytest.mark.parametrize("fmt,suffix,options", [
    ("PNG", ".png", {}), ("JPEG", ".jpg", {"quality": 90}), ("BMP", ".bmp", {}), ("TIFF", ".tif", {}),
    ("WEBP", ".webp", {"quality": 80}), ("WEBP", ".webp", {"lossless": True})])
def test_pixel_limit_reads_each_formats_header(workdir, fmt, suffix, options):
    """Half of each file is cut off, so only its header can say how large it is."""
    path = workdir / f"image{suffix}"
    Image.fromarray((np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)).save(path, fmt, **options)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    result = run_tool(workdir, "mrcnn-visualize", "grid", "--images", path, "-o", "sheet.png",
                      "--max-image-pixels", 1000)
    assert_refused(result, "mrcnn-visualize", path.name, "64x48", "limit of 1000 pixels")


def test_pixel_limit_can_be_raised(workdir, small_model):
    save_image(workdir / "images" / "a.png", 60, 80)
    assert_refused(infer(workdir, small_model, "-i", "images", "-o", "dt.json", "--max-image-pixels", 4000),
                   "mrcnn-infer", "a.png", "80x60", "limit of 4000 pixels")
    assert infer(workdir, small_model, "-i", "images", "-o", "dt.json", "--max-image-pixels", 4800).returncode == 0


def test_png_bomb_in_a_tfrecord_is_refused_or_skipped(workdir, small_model, bomb_bytes):
    """The record claims 20x20 (the reader checks its sizes), the encoded image is the bomb."""
    from tfrecord.writer import TFRecordWriter

    weights, config = small_model
    writer = TFRecordWriter(str(workdir / "val.record"))
    for source_id, image in ((b"1", bomb_bytes), (b"2", png_bomb(20, 20))):
        writer.write({"image/height": (20, "int"), "image/width": (20, "int"),
                      "image/filename": (b"x.png", "byte"), "image/source_id": (source_id, "byte"),
                      "image/encoded": (image, "byte"), "image/format": (b"png", "byte")})
    writer.close()
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": {"format": "tfrecord", "annotations": "val.record"}}
    (workdir / "cfg.json").write_text(json.dumps(cfg))
    args = ("--config", "cfg.json", "--weights", weights, "--dataset", "val", "-o", "dt.json")
    result = run_tool(workdir, "mrcnn-infer", *args, address_space=BOMB_ADDRESS_SPACE)
    assert_refused(result, "mrcnn-infer", "val.record: record at byte 0", "20000x20000")
    result = run_tool(workdir, "mrcnn-infer", *args, "--on-error", "skip", address_space=BOMB_ADDRESS_SPACE)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 of 2 images" in result.stderr


# --- 4. --on-error skip covers every per-image failure ----------------------------------------

def hostile_folder(workdir, bomb_bytes):
    """A folder of two good images and four bad ones, and a FIFO given by name."""
    folder = workdir / "mixed"
    save_image(folder / "a_good.png", 60, 80)
    save_image(folder / "z_good.png", 70, 50, seed=1)
    save_image(folder / "b_thin.png", 1, 4000)
    (folder / "c_bomb.png").write_bytes(bomb_bytes)
    (folder / "d_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "e_empty.jpg").write_bytes(b"")
    return folder, fifo(workdir / "pipe.png")


def test_on_error_skip_skips_and_counts_every_failure(workdir, small_model, bomb_bytes):
    folder, pipe = hostile_folder(workdir, bomb_bytes)
    result = infer(workdir, small_model, "-i", folder, pipe, "-o", "dt.json", "--on-error", "skip",
                   "--batch-size", "2", address_space=BOMB_ADDRESS_SPACE)
    assert result.returncode == 0, result.stderr
    assert "skipped 5 of 7 images" in result.stderr
    for name in ("b_thin.png", "c_bomb.png", "d_broken.png", "e_empty.jpg", "pipe.png"):
        assert f"skipped: {folder / name if name != 'pipe.png' else pipe}" in result.stderr, name
    ids = {r["image_id"] for r in json.loads((workdir / "dt.json").read_text())}
    files = {r["file_name"] for r in json.loads((workdir / "dt.json").read_text())}
    assert files <= {str(folder / "a_good.png"), str(folder / "z_good.png")} and ids


def test_on_error_fail_stops_at_the_first_failure(workdir, small_model, bomb_bytes):
    folder, pipe = hostile_folder(workdir, bomb_bytes)
    result = infer(workdir, small_model, "-i", folder, "-o", "dt.json", address_space=BOMB_ADDRESS_SPACE)
    assert_refused(result, "mrcnn-infer", "b_thin.png")
    assert not (workdir / "dt.json").exists()


# --- 5. Output places that cannot be written --------------------------------------------------

def test_output_places_that_cannot_be_created(workdir, small_model):
    save_image(workdir / "images" / "a.png", 60, 80)
    (workdir / "file.txt").write_text("a file, not a folder")
    assert_refused(infer(workdir, small_model, "-i", "images", "-o", "dt.json", "--overlay-dir", "/proc/mrcnn/x"),
                   "mrcnn-infer", "/proc/mrcnn/x", "cannot create the output folder")
    assert_refused(infer(workdir, small_model, "-i", "images", "-o", "dt.json", "--overlay-dir", "file.txt/sub"),
                   "mrcnn-infer", "file.txt/sub", "cannot create the output folder")
    assert_refused(infer(workdir, small_model, "-i", "images", "-o", "file.txt/dt.json"),
                   "mrcnn-infer", "file.txt/dt.json", "not a directory")
    assert_refused(infer(workdir, small_model, "-i", "images", "-o", "/proc/dt.json"),
                   "mrcnn-infer", "/proc/dt.json", "cannot write")
    assert_refused(run_tool(workdir, "mrcnn-visualize", "grid", "--images", "images", "-o", "/proc/x/s.png"),
                   "mrcnn-visualize", "/proc/x/s.png", "cannot write")
    (workdir / "gt.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "height": 60,
                                                              "width": 80}], "annotations": [],
                                                  "categories": [{"id": 1, "name": "x"}]}))
    assert_refused(run_tool(workdir, "mrcnn-visualize", "gt", "--coco", "gt.json", "--image-root", "images",
                            "-o", "file.txt/gt"), "mrcnn-visualize", "file.txt/gt", "cannot create")
    assert_refused(run_tool(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", "gt.json", "--json", "/proc/m.json"),
                   "mrcnn-eval", "/proc/m.json", "cannot write")
    assert not (workdir / "dt.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_output_folder_without_permission(workdir, small_model):
    save_image(workdir / "images" / "a.png", 60, 80)
    (workdir / "locked").mkdir(mode=0o500)
    assert_refused(infer(workdir, small_model, "-i", "images", "-o", "locked/dt.json"),
                   "mrcnn-infer", "locked/dt.json", "ermission denied")


# --- 6. Drawn images never overwrite each other -----------------------------------------------

def test_gt_and_compare_write_one_file_per_image(workdir):
    images, records = [], []
    for folder in ("a", "b", "c"):
        for k in range(2):
            name = f"{folder}/img{k}.png"
            save_image(workdir / "root" / name, 40 + k, 50)
            images.append({"id": len(images) + 1, "file_name": name, "height": 40 + k, "width": 50})
    annotations = [{"id": i["id"], "image_id": i["id"], "category_id": 1, "bbox": [5, 5, 20, 20], "area": 400,
                    "iscrowd": 0, "segmentation": [[5, 5, 25, 5, 25, 25, 5, 25]]} for i in images]
    records = [{"image_id": i["id"], "category_id": 1, "bbox": [6, 6, 20, 20], "score": 0.9} for i in images]
    (workdir / "gt.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                 "categories": [{"id": 1, "name": "thing"}]}))
    (workdir / "dt.json").write_text(json.dumps(records))
    result = run_tool(workdir, "mrcnn-visualize", "gt", "--coco", "gt.json", "--image-root", "root", "-o", "gt")
    assert result.returncode == 0, result.stderr
    assert len(list((workdir / "gt").glob("*.png"))) == 6
    result = run_tool(workdir, "mrcnn-visualize", "compare", "--coco", "gt.json", "--image-root", "root",
                      "--results", "dt.json", "-o", "cmp")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (workdir / "cmp").glob("*.png"))
    assert names == ["img0.png", "img0_3.png", "img0_5.png", "img1.png", "img1_4.png", "img1_6.png"]


# --- 7. Null validation scores in metrics.jsonl -----------------------------------------------

def test_curves_leave_out_null_validation_scores(workdir):
    lines = [{"step": s, "loss": 2.0 / s, "lr": 0.01} for s in range(1, 6)]
    lines.insert(3, {"step": 3, "val": {"bbox": {"AP": None, "AP50": None}, "segm": {"AP": -1.0, "AP50": -1.0}}})
    lines.append({"step": 5, "val": {"bbox": {"AP": 0.2, "AP50": 0.4}, "segm": {"AP": 0.1, "AP50": 0.3}}})
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_tool(workdir, "mrcnn-visualize", "curves", "--metrics", "metrics.jsonl", "-o", "curves.png")
    assert result.returncode == 0, result.stderr
    assert "metrics.jsonl:4: val.bbox.AP is null" in result.stderr
    assert (workdir / "curves.png").stat().st_size > 0


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1e30", "99999999999999999999", "4294967297"])
@pytest.mark.parametrize("tool", ["mrcnn-infer", "mrcnn-visualize"])
def test_pixel_limit_flag_values_outside_its_range(workdir, small_model, tool, value):
    """--max-image-pixels takes 1 .. 65536^2; anything else is one short error naming the flag."""
    weights, config = small_model
    if tool == "mrcnn-infer":
        args = ["--config", config, "--weights", weights, "-i", "images", "-o", "dt.json"]
    else:
        args = ["detections", "--images", "images", "--results", "dt.json", "-o", "out"]
    line = assert_one_error(run_tool(workdir, tool, *args, "--max-image-pixels", value), tool, "--max-image-pixels")
    assert len(line) < 200, line
