"""Images with any number of bands and bit depths (model.input_channels, data.*.bands,
data.*.pixel_max): the configuration checks them together, 16-bit images scaled by their declared
maximum give exactly the detections of their 8-bit version, 1- and 4-band sets train and infer,
a model file refuses images with another band count, and RGB weights fine-tune onto 4 bands."""
import json

import pytest

from mrcnn_testing import assert_one_error, tiff_bytes, write_tiny_shapes_config

np = pytest.importorskip("numpy")


def tiny_config(workdir, name="bands.json", steps=2, model=None, **train_set):
    """The tiny shapes preset for a few steps, without validation; model and train_set merged in."""
    base = write_tiny_shapes_config(workdir, {"steps": steps, "batch_size": 2, "log_period": 1,
                                              "checkpoint_period": 1000, "eval_period": 1000,
                                              "lr_schedule": {"type": "constant", "warmup_steps": 0,
                                                              "milestones": []}}, train_set)
    cfg = json.loads((workdir / base).read_text())
    cfg["model"].update(model or {})
    cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
    cfg["data"]["train"].pop("label_map", None)
    (workdir / name).write_text(json.dumps(cfg))
    return name


def convert_set(shapes, split, to_bands, suffix, encode=tiff_bytes):
    """Writes shapes/<split><suffix>/ with every PNG of the split as to_bands(rgb) in a TIFF (made
    by encode), and <split><suffix>.json naming them; returns the folder."""
    from PIL import Image

    doc = json.loads((shapes / f"{split}.json").read_text())
    folder = shapes / f"{split}{suffix}"
    folder.mkdir()
    for image in doc["images"]:
        rgb = np.asarray(Image.open(shapes / split / image["file_name"]).convert("RGB"))
        image["file_name"] = image["file_name"].replace(".png", ".tif")
        (folder / image["file_name"]).write_bytes(encode(to_bands(rgb)))
    (shapes / f"{split}{suffix}.json").write_text(json.dumps(doc))
    return folder


def detections(results_file):
    """The results of mrcnn-infer -i in a fixed order (image ids follow the sorted file names)."""
    results = json.loads(results_file.read_text())
    return sorted((r["image_id"], r["category_id"], r["score"], r["bbox"], r["segmentation"]) for r in results)


def test_mean_and_std_lengths_follow_input_channels(run, workdir):
    (workdir / "c.json").write_text(json.dumps({"model": {"input_channels": 4,
                                                          "image_std": [0.2, 0.2, 0.2, 0.2]}}))
    result = run("mrcnn-config", "validate", "c.json")
    assert_one_error(result, "mrcnn-config", "model.image_mean: expected a list of 4 numbers",
                     "[0.485,0.456,0.406]", "(model.input_channels is 4)")
    (workdir / "c.json").write_text(json.dumps({"model": {"input_channels": 1, "image_mean": [0.5],
                                                          "image_std": [0.25]}}))
    assert run("mrcnn-config", "validate", "c.json").returncode == 0


def test_bands_must_give_the_model_its_channels(run, workdir):
    (workdir / "c.json").write_text(json.dumps({"data": {"train": {"bands": [0, 1]}}}))
    assert_one_error(run("mrcnn-config", "validate", "c.json"), "mrcnn-config", "data.train.bands",
                     "selects 2 bands, but model.input_channels is 3")


def test_16_bit_image_without_pixel_max_is_refused(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=2, val=1)
    convert_set(shapes, "train", lambda rgb: rgb.astype(np.uint16) * 257, "16")
    cfg = tiny_config(workdir, images="shapes/train16", annotations="shapes/train16.json")
    doc = json.loads((workdir / cfg).read_text())
    doc["data"]["on_invalid"] = "fail"
    (workdir / cfg).write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", cfg, "--output-dir", "run")
    assert_one_error(result, "mrcnn-train", "shapes/train16/", ".tif: 16-bit image, but data.train.pixel_max is not set")


def test_16_bit_images_detect_exactly_as_their_8_bit_version(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=4, val=3)
    cfg8 = tiny_config(workdir, "rgb8.json")
    assert run("mrcnn-train", "--config", cfg8, "--output-dir", "run").returncode == 0
    result = run("mrcnn-infer", "--config", cfg8, "--weights", "run/model.safetensors", "-i", "shapes/val",
                 "-o", "dt8.json", "--score-threshold", "0")
    assert result.returncode == 0, result.stderr
    expected = detections(workdir / "dt8.json")
    assert expected  # scores above 0: the comparison compares detections
    for suffix, scale, pixel_max in (("16", 257, 65535), ("12", 16, 4080)):
        convert_set(shapes, "val", lambda rgb: rgb.astype(np.uint16) * scale, suffix)
        doc = json.loads((workdir / cfg8).read_text())
        doc["data"]["train"]["pixel_max"] = pixel_max
        (workdir / f"c{suffix}.json").write_text(json.dumps(doc))
        result = run("mrcnn-infer", "--config", f"c{suffix}.json", "--weights", "run/model.safetensors",
                     "-i", f"shapes/val{suffix}", "-o", f"dt{suffix}.json", "--score-threshold", "0")
        assert result.returncode == 0, result.stderr
        assert detections(workdir / f"dt{suffix}.json") == expected, suffix


@pytest.mark.parametrize("bands,to_bands", [
    (1, lambda rgb: rgb.mean(axis=2).astype(np.uint8)),
    (4, lambda rgb: np.dstack([rgb, 255 - rgb[:, :, 1]]).astype(np.uint8)),
])
def test_band_sets_train_infer_and_refuse_other_band_counts(run, workdir, make_shapes, bands, to_bands):
    shapes = make_shapes("shapes", train=4, val=2)
    convert_set(shapes, "train", to_bands, "b")
    convert_set(shapes, "val", to_bands, "b")
    cfg = tiny_config(workdir, model={"input_channels": bands, "image_mean": [0.5] * bands,
                                      "image_std": [0.25] * bands},
                      images="shapes/trainb", annotations="shapes/trainb.json")
    result = run("mrcnn-train", "--config", cfg, "--output-dir", "run")
    assert result.returncode == 0, result.stderr
    result = run("mrcnn-infer", "--model", "run/model.safetensors", "-i", "shapes/valb", "-o", "dt.json",
                 "--overlay-dir", "overlays")
    assert result.returncode == 0, result.stderr
    assert len(list((workdir / "overlays").iterdir())) == 2
    result = run("mrcnn-infer", "--model", "run/model.safetensors", "-i", "shapes/val", "-o", "dt.json")
    assert_one_error(result, "mrcnn-infer", "shapes/val/", "image has 3 bands, the model takes", str(bands))


def test_rgb_weights_fine_tune_onto_four_bands(run, workdir, make_shapes, small_model):
    weights, _ = small_model
    shapes = make_shapes("shapes", train=4, val=2)
    convert_set(shapes, "train", lambda rgb: np.dstack([rgb, rgb[:, :, 0]]).astype(np.uint8), "b")
    cfg = tiny_config(workdir, model={"input_channels": 4, "image_mean": [0.5] * 4, "image_std": [0.25] * 4,
                                      "backbone_norm": "frozen_bn", "fpn_channels": 256},
                      images="shapes/trainb", annotations="shapes/trainb.json")
    doc = json.loads((workdir / cfg).read_text())  # the heads of the torchvision model
    doc["model"]["roi"]["representation_size"] = 1024
    doc["model"]["mask"]["head_channels"] = 256
    (workdir / cfg).write_text(json.dumps(doc))
    result = run("mrcnn-train", "--config", cfg, "--output-dir", "run", "--init-weights", weights)
    assert result.returncode == 0, result.stderr
    assert "adapted backbone.body.conv1.weight from 3 (RGB) to 4 input bands" in result.stderr


def tifffile_planar_deflate(bands):
    """H x W x C as tifffile writes it: planar, 16 x 16 tiles, Deflate with the predictor."""
    import io

    tifffile = pytest.importorskip("tifffile")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.moveaxis(bands, 2, 0), photometric="minisblack", planarconfig="separate",
                     tile=(16, 16), compression="zlib", predictor=True)
    return buffer.getvalue()


def test_five_band_tiffs_train_infer_and_refuse_a_broken_file(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=4, val=2)
    five = lambda rgb: np.dstack([rgb, 255 - rgb[:, :, 1], rgb.mean(axis=2)]).astype(np.uint8)
    convert_set(shapes, "train", five, "5", tifffile_planar_deflate)
    convert_set(shapes, "val", five, "5", tifffile_planar_deflate)
    cfg = tiny_config(workdir, model={"input_channels": 5, "image_mean": [0.5] * 5, "image_std": [0.25] * 5},
                      images="shapes/train5", annotations="shapes/train5.json")
    result = run("mrcnn-train", "--config", cfg, "--output-dir", "run")
    assert result.returncode == 0, result.stderr
    result = run("mrcnn-infer", "--model", "run/model.safetensors", "-i", "shapes/val5", "-o", "dt.json",
                 "--overlay-dir", "overlays")
    assert result.returncode == 0, result.stderr
    assert len(list((workdir / "overlays").iterdir())) == 2
    assert isinstance(json.loads((workdir / "dt.json").read_text()), list)
    victim = sorted((shapes / "val5").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:300])
    result = run("mrcnn-infer", "--model", "run/model.safetensors", "-i", "shapes/val5", "-o", "dt.json")
    assert_one_error(result, "mrcnn-infer", str(victim.name), ": TIFF ")


def write_band_files(shapes, split, bands_of):
    """shapes/<split>5/<stem>_B<k>.png for k = 1.. of bands_of(rgb), one 8-bit gray file a band; the
    set's COCO file is reused (its file names give the stems); returns the folder."""
    from PIL import Image

    folder = shapes / f"{split}5"
    folder.mkdir()
    for image in json.loads((shapes / f"{split}.json").read_text())["images"]:
        rgb = np.asarray(Image.open(shapes / split / image["file_name"]).convert("RGB"))
        stem = image["file_name"].rsplit(".", 1)[0]
        for k, band in enumerate(bands_of(rgb), 1):
            Image.fromarray(band.astype(np.uint8)).save(folder / f"{stem}_B{k}.png")
    return folder


def test_five_bands_from_band_files_train_and_infer(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=4, val=2)
    five = lambda rgb: [rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2], 255 - rgb[:, :, 1], rgb.mean(axis=2)]
    write_band_files(shapes, "train", five)
    write_band_files(shapes, "val", five)
    cfg = tiny_config(workdir, model={"input_channels": 5, "image_mean": [0.5] * 5, "image_std": [0.25] * 5},
                      images="shapes/train5", annotations="shapes/train.json", bands=[1, 2, 3, 4, 5],
                      band_files="{stem}_B{band}.png")
    result = run("mrcnn-train", "--config", cfg, "--output-dir", "run")
    assert result.returncode == 0, result.stderr
    result = run("mrcnn-infer", "--model", "run/model.safetensors", "--coco", "shapes/val.json",
                 "--image-root", "shapes/val5", "-o", "dt.json", "--overlay-dir", "overlays")
    assert result.returncode == 0, result.stderr
    assert len(list((workdir / "overlays").iterdir())) == 2
    (shapes / "val5" / "100000_B4.png").unlink()
    result = run("mrcnn-infer", "--model", "run/model.safetensors", "--coco", "shapes/val.json",
                 "--image-root", "shapes/val5", "-o", "dt.json")
    assert_one_error(result, "mrcnn-infer", "shapes/val5/100000_B4.png")


def test_band_files_need_band_numbers(run, workdir):
    (workdir / "c.json").write_text(json.dumps({"data": {"train": {"band_files": "{stem}_B{band}.tif"}}}))
    assert_one_error(run("mrcnn-config", "validate", "c.json"), "mrcnn-config", "data.train.bands: is empty",
                     "data.train.band_files is set")


def read_drawn(folder):
    """The one image in folder, as an RGB array."""
    from PIL import Image

    (drawn,) = sorted(folder.iterdir())
    return np.asarray(Image.open(drawn).convert("RGB"))


def test_overlays_draw_the_chosen_channels(run, workdir, make_shapes):
    shapes = make_shapes("shapes", train=2, val=1)
    four = lambda rgb: np.dstack([rgb, 255 - rgb[:, :, 1]]).astype(np.uint8)
    convert_set(shapes, "train", four, "4")
    val = convert_set(shapes, "val", four, "4")
    cfg = tiny_config(workdir, steps=1, model={"input_channels": 4, "image_mean": [0.5] * 4, "image_std": [0.25] * 4},
                      images="shapes/train4", annotations="shapes/train4.json")
    assert run("mrcnn-train", "--config", cfg, "--output-dir", "run").returncode == 0
    from PIL import Image

    (tif,) = sorted(val.iterdir())
    bands = four(np.asarray(Image.open(shapes / "val" / tif.name.replace(".tif", ".png")).convert("RGB")))
    # No detection clears score 1.0: the overlay is the view itself.
    for view, expected in (("3,0,1", bands[:, :, [3, 0, 1]]), ("3", np.dstack([bands[:, :, 3]] * 3)),
                           (None, bands[:, :, :3])):
        out = workdir / f"overlays{view}"
        flags = ["--overlay-bands", view] if view else []
        result = run("mrcnn-infer", "--model", "run/model.safetensors", "-i", "shapes/val4", "-o", "dt.json",
                     "--score-threshold", "1.0", "--overlay-dir", out.name, *flags)
        assert result.returncode == 0, result.stderr
        assert (read_drawn(out) == expected).all(), view
    result = run("mrcnn-infer", "--model", "run/model.safetensors", "-i", "shapes/val4", "-o", "dt.json",
                 "--overlay-dir", "o2", "--overlay-bands", "4,0,1")
    assert_one_error(result, "mrcnn-infer", "--overlay-bands: names channel 4, the model takes 4")
    bad = json.loads((workdir / cfg).read_text())
    bad["infer"] = {"overlay_bands": [0, 1]}
    (workdir / "bad.json").write_text(json.dumps(bad))
    assert_one_error(run("mrcnn-config", "validate", "bad.json"), "mrcnn-config", "infer.overlay_bands",
                     "expected 3 channels (R, G, B) or 1 (gray), found [0,1]")


def test_visualize_draws_chosen_bands_of_16_bit_images(run, workdir):
    rng = np.random.default_rng(5)
    bands = rng.integers(0, 65536, size=(24, 40, 5), dtype=np.uint16)
    (workdir / "images").mkdir()
    (workdir / "images" / "a.tif").write_bytes(tiff_bytes(bands))
    (workdir / "empty.json").write_text("[]")
    args = ["mrcnn-visualize", "detections", "--images", "images", "--results", "empty.json"]
    result = run(*args, "-o", "out", "--bands", "4,0,2", "--pixel-max", "65535")
    assert result.returncode == 0, result.stderr
    # v * 255 / 65535, rounded as OpenCV's saturating convertTo rounds (half to even).
    expected = np.rint(bands[:, :, [4, 0, 2]].astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert (read_drawn(workdir / "out") == expected).all()
    assert_one_error(run(*args, "-o", "o2", "--bands", "4,0,2"), "mrcnn-visualize", "a.tif: 16-bit image",
                     "--pixel-max is not set")
    assert_one_error(run(*args, "-o", "o3", "--bands", "5", "--pixel-max", "65535"), "mrcnn-visualize",
                     "--bands names band 5, the image has 5 bands")
