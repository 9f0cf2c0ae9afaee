"""Our RLE encoding against pycocotools on many masks: the compressed counts strings must be
byte-identical, and area and bbox equal to pycocotools' area and toBbox."""
import json
import subprocess

import numpy as np
import pytest

from mrcnn_testing import TEST_BIN_DIR

mask_api = pytest.importorskip("pycocotools.mask")

def write_png(path, mask):
    from PIL import Image
    Image.fromarray((mask * 255).astype(np.uint8)).save(path)


def masks():
    rng = np.random.default_rng(7)
    yield "empty", np.zeros((13, 17), np.uint8)
    yield "full", np.ones((9, 11), np.uint8)
    single = np.zeros((20, 30), np.uint8)
    single[0, 0] = 1
    yield "top-left pixel", single
    corner = np.zeros((20, 30), np.uint8)
    corner[19, 29] = 1
    yield "bottom-right pixel", corner
    yy, xx = np.mgrid[:300, :400]
    yield "disc", (((yy - 150) ** 2 + (xx - 210) ** 2) < 90 ** 2).astype(np.uint8)
    yield "two columns", ((xx % 200) < 3).astype(np.uint8)[:50]
    for i in range(8):
        h, w = rng.integers(1, 120, size=2)
        yield f"random {i}", (rng.random((h, w)) < rng.random()).astype(np.uint8)
    # long runs: counts above 2^16 exercise the multi-character encoding and negative deltas
    big = np.zeros((700, 900), np.uint8)
    big[100:600, 50:60] = 1
    big[650:, 800:] = 1
    yield "long runs", big


@pytest.mark.parametrize("name,mask", list(masks()), ids=[n for n, _ in masks()])
def test_encode_matches_pycocotools(tmp_path, name, mask):
    png = tmp_path / "m.png"
    write_png(png, mask)
    ours = json.loads(subprocess.run([str(TEST_BIN_DIR / "rle_tool"), png], capture_output=True, text=True,
                                     check=True).stdout)
    ref = mask_api.encode(np.asfortranarray(mask))
    assert ours["counts"] == ref["counts"].decode()
    assert ours["area"] == int(mask_api.area(ref))
    assert ours["bbox"] == pytest.approx(list(mask_api.toBbox(ref)))
    assert ours["roundtrip"] is True


def test_block_encoding_equals_full_mask(tmp_path):
    rng = np.random.default_rng(3)
    for _ in range(5):
        h, w = rng.integers(20, 80, size=2)
        bh, bw = rng.integers(1, h), rng.integers(1, w)
        y0, x0 = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
        block = (rng.random((bh, bw)) < 0.5).astype(np.uint8)
        full = np.zeros((h, w), np.uint8)
        full[y0:y0 + bh, x0:x0 + bw] = block
        write_png(tmp_path / "b.png", block)
        ours = json.loads(subprocess.run([str(TEST_BIN_DIR / "rle_tool"), "--block", *map(str, (h, w, x0, y0)), tmp_path / "b.png"],
                                         capture_output=True, text=True, check=True).stdout)
        assert ours["counts"] == mask_api.encode(np.asfortranarray(full))["counts"].decode()


def test_decode_of_pycocotools_strings(tmp_path):
    from PIL import Image
    yy, xx = np.mgrid[:64, :80]
    mask = ((yy - 30) ** 2 + (xx - 40) ** 2 < 400).astype(np.uint8)
    counts = mask_api.encode(np.asfortranarray(mask))["counts"].decode()
    out = tmp_path / "d.png"
    subprocess.run([str(TEST_BIN_DIR / "rle_tool"), "--decode", counts, "64", "80", out], check=True)
    assert (np.asarray(Image.open(out)) > 0).astype(np.uint8).tolist() == mask.tolist()
