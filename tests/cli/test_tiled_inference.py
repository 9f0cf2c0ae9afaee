"""mrcnn-infer --tile, run for real with a small random model: an image smaller than a tile gives
plain inference's results exactly; tiled results are COCO records in image pixels (overlays,
--on-error and mrcnn-eval --config as without tiles); a 10000x10000 image runs in the memory of a
1333x1333 one plus the decoded image; bad values are one error line. How detections that tile
borders cut are merged is tested on synthetic detections in tests/infer/test_tiling.cpp."""
import json
import subprocess
import sys

import pytest

from mrcnn_testing import BIN_DIR, assert_one_error, sample_images


# The random model's heads keep fewer proposals and detections (its scores are near-ties, so every
# tile would fill the mask head with 100 detections): a few seconds a run on two busy cores.
FAST = {"rpn": {"post_nms_top_n_test": 100}, "roi": {"detections_per_img": 12}}


def write_config(workdir, small_model, name, **sections):
    """small_model's configuration, made FAST, with sections updated (e.g. infer={"tile": {...}})."""
    cfg = json.loads(small_model[1].read_text())
    cfg["model"].update(FAST)
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    (workdir / name).write_text(json.dumps(cfg))
    return workdir / name


@pytest.fixture
def fast_config(workdir, small_model):
    return write_config(workdir, small_model, "fast.json")


def infer(run, small_model, *args, config):
    return run("mrcnn-infer", "--config", config, "--weights", small_model[0], *args)


@pytest.fixture
def photo(workdir):
    """A Penn-Fudan photo (559x536): 3x3 tiles of 256 pixels; without the data, a synthetic one as large."""
    from PIL import Image
    path = sample_images(workdir / "images", count=1)[0]
    if Image.open(path).size[0] < 512:
        Image.open(path).resize((559, 536)).save(path)
    return path


def test_image_smaller_than_a_tile_equals_plain_inference(run, workdir, small_model, fast_config, photo):
    from PIL import Image
    Image.open(photo).crop((0, 0, 250, 200)).save(workdir / "small.png")
    assert infer(run, small_model, "-i", "small.png", "-o", "plain.json", config=fast_config).returncode == 0
    plain = (workdir / "plain.json").read_text()
    assert json.loads(plain), "no detections to compare: lower the score threshold"
    for extra in ([], ["--tile-full-image"], ["--tile-scale", "0.5"]):
        result = infer(run, small_model, "-i", "small.png", "-o", "tiled.json", "--tile", "256", *extra,
                       config=fast_config)
        assert result.returncode == 0, result.stderr
        assert "tiled: 256-pixel tiles" in result.stderr
        assert (workdir / "tiled.json").read_text() == plain, extra


def test_tiled_results_are_coco_records_in_image_pixels(run, workdir, small_model, fast_config, photo):
    mask_api = pytest.importorskip("pycocotools.mask")
    from PIL import Image
    width, height = Image.open(photo).size
    result = infer(run, small_model, "-i", photo, "-o", "dt.json", "--tile", "256", "--tile-overlap", "0.25",
                   "--tile-full-image", "--batch-size", "3", "--overlay-dir", "overlays", config=fast_config)
    assert result.returncode == 0, result.stderr
    records = json.loads((workdir / "dt.json").read_text())
    assert 0 < len(records) <= FAST["roi"]["detections_per_img"]  # merged, then capped
    assert [r["score"] for r in records] == sorted((r["score"] for r in records), reverse=True)
    for r in records:
        assert r["segmentation"]["size"] == [height, width]
        rle = {"size": [height, width], "counts": r["segmentation"]["counts"].encode()}
        assert mask_api.area(rle) == mask_api.decode(rle).sum()
        x, y, w, h = r["bbox"]
        assert 0 <= x and 0 <= y and x + w <= width + 0.01 and y + h <= height + 0.01
        if mask_api.area(rle):  # the mask lies in (a slightly grown copy of) the box
            mx, my, mw, mh = mask_api.toBbox(rle)
            assert mx >= x - 0.1 * w - 2 and mx + mw <= x + 1.1 * w + 2
    assert Image.open(workdir / "overlays" / photo.name).size == (width, height)
    plain = infer(run, small_model, "-i", photo, "-o", "plain.json", config=fast_config)
    assert plain.returncode == 0
    assert json.loads((workdir / "plain.json").read_text()) != records  # tiles do change what the model sees


def tile_starts(length, tile, overlap):
    """lib/infer/tiling.cpp's grid along one side."""
    if length <= tile:
        return [0]
    stride = max(1, tile - round(tile * overlap))
    return [*range(0, length - tile, stride), length - tile]


def reference_merge(found, tiles, threshold, cap):
    """The documented merge, by brute force on full masks: found = [(score, label, mask, box, tile)];
    gives [(score, label, mask, box, how many tiles saw it)]."""
    import numpy as np

    def shared(a, b):
        (ax, ay), (bx, by) = tiles[a], tiles[b]
        return slice(max(ay, by), min(ay, by) + 256), slice(max(ax, bx), min(ax, bx) + 256)

    def same_object(a, b):
        if a[1] != b[1] or a[4] == b[4]:
            return False
        area = shared(a[4], b[4])
        part_a, part_b = a[2][area].sum(), b[2][area].sum()
        both = (a[2][area] & b[2][area]).sum()
        return part_a > 0 and part_b > 0 and both / (part_a + part_b - both) >= threshold

    order = sorted(found, key=lambda d: -d[0])
    # Members look for matches tile by tile, each tile's detections by score; a group takes at most
    # one detection per tile.
    by_tile = sorted(range(len(order)), key=lambda j: order[j][4])
    taken, merged = [False] * len(order), []
    for i, seed in enumerate(order):
        if taken[i] or len(merged) == cap:
            continue
        group, taken[i] = [seed], True
        for member in group:
            for j in by_tile:
                other = order[j]
                if not taken[j] and other[4] not in {d[4] for d in group} and same_object(member, other):
                    taken[j] = True
                    group.append(other)
        boxes = np.array([d[3] for d in group])
        merged.append((seed[0], seed[1], np.any([d[2] for d in group], axis=0),
                       [*boxes[:, :2].min(0), *boxes[:, 2:].max(0)], len({d[4] for d in group})))
    return merged


def test_tiled_results_are_the_merge_of_each_tiles_detections(run, workdir, small_model, photo):
    """End to end: each 256-pixel tile run alone (a model whose resize keeps 256x256 as it is) gives
    that tile's detections; merged by the reference rule above they are what --tile writes: one
    detection per object that borders cut (four tiles meet at four corners here), union masks."""
    mask_api = pytest.importorskip("pycocotools.mask")
    import numpy as np
    from PIL import Image
    # fp32 on every CPU: the tiles reach the model by two paths (PNG files resized by the model, crops
    # at a fixed scale), equal in float32; under bf16 autocast a last-bit difference in a pixel can
    # round a value the other way, and scores must be equal here, not close.
    cfg = write_config(workdir, small_model, "c256.json", model={"min_size": [256], "max_size": 256},
                       infer={"precision": "fp32"})
    image = Image.open(photo)
    width, height = image.size
    tiles = [(x, y) for y in tile_starts(height, 256, 0.25) for x in tile_starts(width, 256, 0.25)]
    (workdir / "tiles").mkdir()
    for k, (x, y) in enumerate(tiles):
        image.crop((x, y, x + 256, y + 256)).save(workdir / "tiles" / f"t{k:02d}.png")
    assert infer(run, small_model, "-i", "tiles", "-o", "raw.json", config=cfg).returncode == 0
    assert infer(run, small_model, "-i", photo, "-o", "tiled.json", "--tile", "256", "--tile-overlap", "0.25",
                 config=cfg).returncode == 0
    found = []
    for r in json.loads((workdir / "raw.json").read_text()):
        x, y = tiles[r["image_id"] - 1]
        mask = np.zeros((height, width), bool)
        mask[y:y + 256, x:x + 256] = mask_api.decode({"size": [256, 256], "counts": r["segmentation"]["counts"]})
        bx, by, bw, bh = r["bbox"]
        found.append((r["score"], r["category_id"], mask, [bx + x, by + y, bx + x + bw, by + y + bh], r["image_id"] - 1))
    expected = reference_merge(found, tiles, 0.5, FAST["roi"]["detections_per_img"])
    tiled = json.loads((workdir / "tiled.json").read_text())
    print("tiles that saw each object:", [e[4] for e in expected])
    assert len(tiled) == len(expected)
    assert max(e[4] for e in expected) >= 3  # merges across borders and corners did happen
    for got, (score, label, mask, box, _) in zip(tiled, expected):
        assert (got["score"], got["category_id"]) == (score, label)
        assert (mask_api.decode({"size": [height, width], "counts": got["segmentation"]["counts"]}) == mask).all()
        x, y, w, h = got["bbox"]
        assert np.allclose([x, y, x + w, y + h], box, atol=0.03)


def test_tile_keys_in_the_configuration(run, workdir, small_model, fast_config, photo):
    """infer.tile.* do what the flags do; the flags override them."""
    keyed = write_config(workdir, small_model, "tiled.json",
                         infer={"tile": {"size": 256, "overlap": 0.25, "full_image": True}})
    assert infer(run, small_model, "-i", photo, "-o", "by_keys.json", config=keyed).returncode == 0
    assert infer(run, small_model, "-i", photo, "-o", "by_flags.json", "--tile", "256", "--tile-overlap", "0.25",
                 "--tile-full-image", config=fast_config).returncode == 0
    assert (workdir / "by_keys.json").read_text() == (workdir / "by_flags.json").read_text()
    assert infer(run, small_model, "-i", photo, "-o", "off.json", "--tile", "0", config=keyed).returncode == 0
    assert infer(run, small_model, "-i", photo, "-o", "plain.json", config=fast_config).returncode == 0
    assert (workdir / "off.json").read_text() == (workdir / "plain.json").read_text()


def test_on_error_with_tiles(run, workdir, small_model, fast_config, photo):
    (workdir / "images" / "broken.png").write_bytes(b"this is not a png")
    result = infer(run, small_model, "-i", "images", "-o", "dt.json", "--tile", "256", config=fast_config)
    assert_one_error(result, "mrcnn-infer", "images/broken.png: cannot decode image")
    result = infer(run, small_model, "-i", "images", "-o", "dt.json", "--tile", "256", "--on-error", "skip",
                   config=fast_config)
    assert result.returncode == 0, result.stderr
    assert "skipped: images/broken.png: cannot decode image" in result.stderr and "1 skipped" in result.stderr
    assert {r["image_id"] for r in json.loads((workdir / "dt.json").read_text())} == {2}  # sorted: broken.png first


def test_eval_config_runs_inference_with_the_tile_keys(run, workdir, small_model, photo):
    from PIL import Image
    width, height = Image.open(photo).size
    gt = {"images": [{"id": 1, "file_name": photo.name, "height": height, "width": width}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 150, 280], "area": 42000,
                           "iscrowd": 0, "segmentation": [[10, 10, 160, 10, 160, 290, 10, 290]]}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (workdir / "val.json").write_text(json.dumps(gt))
    cfg = write_config(workdir, small_model, "c.json", infer={"tile": {"size": 256}}, eval={"device": "cpu"},
                       data={"val": {"format": "coco", "annotations": "val.json", "images": "images"}})
    result = run("mrcnn-eval", "--config", cfg, "--weights", small_model[0], "--json", "by_config.json")
    assert result.returncode == 0, result.stderr
    assert "tiled: 256-pixel tiles" in result.stderr
    assert infer(run, small_model, "--coco", "val.json", "--image-root", "images", "-o", "dt.json",
                 "--score-threshold", "0", config=cfg).returncode == 0
    assert run("mrcnn-eval", "--gt", "val.json", "--dt", "dt.json", "--json", "by_files.json").returncode == 0
    assert json.loads((workdir / "by_config.json").read_text()) == json.loads((workdir / "by_files.json").read_text())


@pytest.mark.parametrize("args, fragments", [
    (["--tile", "-5"], ["--tile", "-5"]),
    (["--tile", "16"], ["infer.tile.size (--tile): 16", "32"]),
    (["--tile", "512", "--tile-overlap", "1.5"], ["--tile-overlap", "1.5"]),
    (["--tile", "512", "--tile-scale", "0"], ["infer.tile.scale (--tile-scale): 0"]),
    (["--tile", "100", "--tile-scale", "0.2"], ["gives tiles under 32 pixels"]),
])
def test_bad_tile_flags(run, small_model, fast_config, photo, args, fragments):
    result = infer(run, small_model, "-i", photo, "-o", "dt.json", *args, config=fast_config)
    assert_one_error(result, "mrcnn-infer", *fragments)


@pytest.mark.parametrize("tile, fragment", [
    ({"size": 8}, "infer.tile.size (--tile): 8"),
    ({"size": 512, "overlap": 1.5}, "infer.tile.overlap"),
    ({"size": -1}, "infer.tile.size"),
])
def test_bad_tile_keys(run, workdir, small_model, photo, tile, fragment):
    cfg = write_config(workdir, small_model, "bad.json", infer={"tile": tile})
    assert_one_error(infer(run, small_model, "-i", photo, "-o", "dt.json", config=cfg), "mrcnn-infer", fragment)


def peak_rss_mib(cwd, *argv):
    """Runs a tool in a fresh Python process and returns (exit code, stderr, the tool's peak RSS in MiB):
    RUSAGE_CHILDREN there counts that one child only."""
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "sys.stderr.write(r.stderr)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(r.returncode)")
    result = subprocess.run([sys.executable, "-c", probe, str(BIN_DIR / argv[0]), *map(str, argv[1:])], cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    return result.returncode, result.stderr, int(result.stdout.split()[-1]) / 1024


def test_memory_of_a_10000_pixel_image_is_bounded_by_the_tiles(workdir, small_model):
    """10000x10000 in 2500-pixel tiles that enter the model at 400x400 (--tile-scale 0.16), against a
    1333x1333 image the model also sees at 400x400: the peak RSS may exceed the small image's by the
    decoded image (3 bytes a pixel; decoding briefly holds a BGR and an RGB copy) and 150 MiB (the
    float copies of one 2500-pixel tile before it is resized, the detections)."""
    import numpy as np
    from PIL import Image, ImageDraw
    weights, _ = small_model
    cfg = write_config(workdir, small_model, "c.json", model={"min_size": [400], "max_size": 400})
    for side in (1333, 10000):
        image = Image.fromarray(np.full((side, side, 3), 110, np.uint8))
        draw = ImageDraw.Draw(image)
        for k in range(0, side - 300, max(side // 12, 200)):  # objects of sorts, across tile borders too
            draw.ellipse((k, k, k + 250, k + 180), fill=(200, 60, 40))
            draw.rectangle((side - k - 260, k, side - k - 60, k + 120), fill=(30, 140, 200))
        image.save(workdir / f"img{side}.png", compress_level=1)
    common = ["--config", cfg, "--weights", weights, "--threads", "2", "--score-threshold", "0"]
    rc, err, small = peak_rss_mib(workdir, "mrcnn-infer", *common, "-i", "img1333.png", "-o", "small.json")
    assert rc == 0, err
    rc, err, large = peak_rss_mib(workdir, "mrcnn-infer", *common, "-i", "img10000.png", "-o", "large.json",
                                  "--tile", "2500", "--tile-scale", "0.16", "--tile-overlap", "0")
    assert rc == 0, err
    records = json.loads((workdir / "large.json").read_text())
    assert records and all(r["segmentation"]["size"] == [10000, 10000] for r in records)
    decoded_image = 2 * 3 * 10000 * 10000 / 2**20
    print(f"peak RSS: 1333x1333 {small:.0f} MiB, 10000x10000 tiled {large:.0f} MiB, "
          f"decoded image {decoded_image / 2:.0f} MiB")
    assert large <= small + decoded_image + 150, (small, large)
    # The overlay draws on one more copy of the image, each mask inside its own box.
    rc, err, drawn = peak_rss_mib(workdir, "mrcnn-infer", *common, "-i", "img10000.png", "-o", "drawn.json",
                                  "--tile", "2500", "--tile-scale", "0.16", "--tile-overlap", "0", "--overlay-dir", "o")
    assert rc == 0, err
    assert (workdir / "o" / "img10000.png").stat().st_size > 0
    print(f"peak RSS with the overlay: {drawn:.0f} MiB")
    assert drawn <= small + 1.5 * decoded_image + 150, (small, drawn)
