"""TIFFs as independent writers make them (tifffile; Pillow through libtiff) decode to exactly the
pixels those writers' own readers return: 1 to 8 bands, 8- and 16-bit integers and 32-bit floats,
no compression, Deflate with and without the predictor, LZW and PackBits, chunky and planar,
strips and tiles, both byte orders. The pixels are read through tests/tools/image_dump (the
model's input: each band * 255 / pixel_max), and broken files end in one error line."""
import io
import itertools
import json
import subprocess

import pytest

from mrcnn_testing import TEST_BIN_DIR

np = pytest.importorskip("numpy")
tifffile = pytest.importorskip("tifffile")

FULL_SCALE = {np.uint8: 255, np.uint16: 65535, np.int16: 32767, np.float32: 1.0}


def image_dump(path, channels, pixel_max, *bands):
    """The model input mrcnn decodes from path, as an H x W x channels float32 array."""
    out = path.with_suffix(".raw")
    result = subprocess.run([str(TEST_BIN_DIR / "image_dump"), str(path), str(channels), str(pixel_max), str(out),
                             *map(str, bands)], capture_output=True, text=True, timeout=60)
    if "nor by OpenCV" in result.stderr and "Compression 7" in result.stderr:
        pytest.skip("this build's OpenCV has no TIFF codec (the portable kit's)")
    assert result.returncode == 0, result.stderr
    shape = json.loads(result.stdout)
    return np.fromfile(out, dtype=np.float32).reshape(shape["rows"], shape["cols"], shape["channels"])


def model_input(array, pixel_max):
    """What the model should get for an H x W (x C) array: each value * 255 / pixel_max in float64,
    rounded once to float32 (as io/image_bands computes it)."""
    a = array if array.ndim == 3 else array[:, :, None]
    return (a.astype(np.float64) * 255.0 / pixel_max).astype(np.float32)


def sample_array(dtype, bands, height=37, width=45, seed=0):
    """Noise over the type's whole range (floats: spread around 0), H x W x bands."""
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return (rng.standard_normal((height, width, bands)) * 3).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=(height, width, bands), endpoint=True, dtype=dtype)


def write_tifffile(path, array, compression, planar, tiled, predictor, byteorder):
    data = array[:, :, 0] if array.shape[2] == 1 else np.moveaxis(array, 2, 0) if planar else array
    layout = None if array.shape[2] == 1 else "separate" if planar else "contig"
    tifffile.imwrite(path, data, photometric="rgb" if array.shape[2] == 3 else "minisblack",
                     planarconfig=layout, compression=compression,
                     predictor=predictor, tile=(16, 16) if tiled else None, rowsperstrip=None if tiled else 5,
                     byteorder=byteorder)
    truth = tifffile.imread(path)  # H x W, H x W x C, or C x H x W for planar files
    return np.moveaxis(truth, 0, 2) if layout == "separate" else truth.reshape(array.shape)


CASES = [c for c in itertools.product([np.uint8, np.uint16, np.int16, np.float32], [1, 3, 5, 8],
                                      [None, "zlib", "deflate"], [False, True], [False, True])]


@pytest.mark.parametrize("dtype,bands,compression,planar,tiled", CASES,
                         ids=[f"{d.__name__}-{b}b-{c}-{'planar' if p else 'chunky'}-{'tiled' if t else 'strips'}"
                              for d, b, c, p, t in CASES])
def test_tifffile_images_decode_to_tifffiles_pixels(workdir, dtype, bands, compression, planar, tiled):
    array = sample_array(dtype, bands, seed=bands)
    for byteorder, predictor in (("<", False), (">", compression is not None and dtype != np.float32)):
        path = workdir / f"img{byteorder == '>'}.tif"
        truth = write_tifffile(path, array, compression, planar and bands > 1, tiled, predictor, byteorder)
        assert np.array_equal(truth, array)  # tifffile reads back what it wrote
        expected = model_input(truth, FULL_SCALE[dtype])
        got = image_dump(path, bands, FULL_SCALE[dtype])
        assert got.shape == expected.shape
        assert np.array_equal(got, expected), (byteorder, predictor)


@pytest.mark.parametrize("mode,compression", list(itertools.product(
    ["L", "RGB", "RGBA", "I;16"], ["tiff_lzw", "packbits", "tiff_adobe_deflate", "raw"])))
def test_pillow_libtiff_images_decode_to_pillows_pixels(workdir, mode, compression):
    from PIL import Image

    bands = {"L": 1, "RGB": 3, "RGBA": 4, "I;16": 1}[mode]
    # Smooth gradients plus noise: long LZW strings and table resets, PackBits runs and literals.
    y, x = np.mgrid[0:150, 0:130]
    base = np.dstack([(x * 2 + y * k) % 256 for k in range(1, bands + 1)]) + np.random.default_rng(1).integers(0, 3, (150, 130, bands))
    array = (base % 256).astype(np.uint8) if mode != "I;16" else (base[:, :, 0] * 257 + 3).astype(np.uint16)
    image = Image.fromarray(array if mode != "L" else array[:, :, 0], mode if mode != "I;16" else None)
    path = workdir / "p.tif"
    image.save(path, format="TIFF", compression=compression)
    truth = np.asarray(Image.open(path))
    pixel_max = 65535 if mode == "I;16" else 255
    got = image_dump(path, bands, pixel_max, *range(bands))  # bands listed: as stored, RGBA too
    assert np.array_equal(got, model_input(truth, pixel_max))


def test_the_plain_rgb_layout_reads_gray_and_rgba_tiffs_as_rgb(workdir):
    gray = sample_array(np.uint8, 1)
    tifffile.imwrite(workdir / "g.tif", gray, photometric="minisblack", compression="zlib")
    assert np.array_equal(image_dump(workdir / "g.tif", 3, 0), np.repeat(gray, 3, axis=2).astype(np.float32))
    rgba = sample_array(np.uint8, 4)
    tifffile.imwrite(workdir / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    assert np.array_equal(image_dump(workdir / "a.tif", 3, 0), rgba[:, :, :3].astype(np.float32))


def test_broken_tiffs_end_in_one_error_line(workdir):
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, sample_array(np.uint16, 5, height=20, width=20), photometric="minisblack",
                     planarconfig="contig", compression="zlib", rowsperstrip=4)
    whole = buffer.getvalue()
    (workdir / "cut.tif").write_bytes(whole[:len(whole) // 2])
    (workdir / "bad.tif").write_bytes(whole[:300] + bytes(b ^ 0x55 for b in whole[300:600]) + whole[600:])
    for name, message in (("cut.tif", ": TIFF "), ("bad.tif", ": TIFF strip ")):
        result = subprocess.run([str(TEST_BIN_DIR / "image_dump"), str(workdir / name), "5", "65535",
                                 str(workdir / "x.raw")], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"image_dump: error: {workdir / name}{message}"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_tiffs_the_reader_leaves_aside_go_to_opencv(workdir):
    from PIL import Image

    y, x = np.mgrid[0:64, 0:80]
    rgb = np.dstack([x * 3, y * 4, (x + y) * 2]).astype(np.uint8)
    Image.fromarray(rgb).save(workdir / "j.tif", format="TIFF", compression="jpeg")  # Compression 7
    truth = np.asarray(Image.open(workdir / "j.tif")).astype(np.float32)
    got = image_dump(workdir / "j.tif", 3, 0)
    assert got.shape == truth.shape
    assert np.abs(got - truth).mean() < 2  # two JPEG decoders: close, not always equal
