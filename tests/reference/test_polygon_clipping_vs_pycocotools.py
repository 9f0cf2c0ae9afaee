"""Polygons reaching far outside their image: mrcnn follows the outline only inside the image
(memory and time in proportion to the image, not the coordinates); the masks must still equal
pycocotools' rleFrPoly, which walks every upsampled point of every edge."""
import json
import subprocess

import numpy as np
import pytest

mask_api = pytest.importorskip("pycocotools.mask")

from mrcnn_testing import TEST_BIN_DIR  # noqa: E402


def polygons():
    rng = np.random.default_rng(17)
    for i in range(300):
        h, w = int(rng.integers(1, 70)), int(rng.integers(1, 70))
        n = int(rng.integers(3, 10))
        reach = [1, 5, 50, 2000][i % 4]  # how far outside, in image sizes
        xy = np.stack([rng.uniform(-reach * w, (reach + 1) * w, n), rng.uniform(-reach * h, (reach + 1) * h, n)], 1)
        if i % 3 == 0:
            xy = np.round(xy)
        if i % 5 == 0:
            xy[1::2, 0] = xy[::2, 0][: len(xy[1::2])]  # vertical edges
        yield {"h": h, "w": w, "xy": [float(v) for v in xy.reshape(-1)]}


def test_far_polygons_match_pycocotools(tmp_path):
    cases = list(polygons())
    (tmp_path / "request.json").write_text(json.dumps({"polygons": cases, "merges": [], "ious": [], "masks": []}))
    out = subprocess.run([str(TEST_BIN_DIR / "rle_tool"), "--batch", tmp_path / "request.json"], capture_output=True,
                         text=True, check=True, timeout=60)
    got = json.loads(out.stdout)["polygons"]
    for p, ours in zip(cases, got):
        ref = mask_api.frPyObjects([p["xy"]], p["h"], p["w"])[0]
        assert ours["counts"] == ref["counts"].decode(), p
