"""TF OD API TFRecords written by an independent encoder (the `tfrecord` package from PyPI: its
TFRecordWriter with tf.train.Example protos from protobuf, CRC-32C from the crc32c package), read
back by mrcnn's reader (tests/tools/dataset_dump) and compared feature by feature; corrupt and
truncated files are reported with file and byte offset and skipped, or fatal under `fail`."""
import io
import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from mrcnn_testing import TEST_BIN_DIR

from tfrecord import writer as tfrecord_writer  # scripts/requirements.txt installs it


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def make_example(image_id, rng, width=48, height=40, objects=3, float_masks=False):
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    masks, boxes, labels = [], [], []
    for k in range(objects):
        x0, y0 = int(rng.integers(0, width - 12)), int(rng.integers(0, height - 12))
        w, h = int(rng.integers(4, 12)), int(rng.integers(4, 12))
        mask = np.zeros((height, width), np.uint8)
        mask[y0:y0 + h, x0:x0 + w] = 1
        masks.append(mask)
        boxes.append((x0 / width, y0 / height, (x0 + w) / width, (y0 + h) / height))
        labels.append(k % 3 + 1)
    datum = {
        "image/height": (height, "int"), "image/width": (width, "int"),
        "image/filename": (f"img{image_id}.png".encode(), "byte"),
        "image/source_id": (str(image_id).encode(), "byte"),
        "image/encoded": (png_bytes(image), "byte"), "image/format": (b"png", "byte"),
        "image/object/bbox/xmin": ([b[0] for b in boxes], "float"),
        "image/object/bbox/ymin": ([b[1] for b in boxes], "float"),
        "image/object/bbox/xmax": ([b[2] for b in boxes], "float"),
        "image/object/bbox/ymax": ([b[3] for b in boxes], "float"),
        "image/object/class/text": ([b"a", b"b", b"c"][:objects], "byte"),
        "image/object/class/label": (labels, "int"),
    }
    if float_masks:
        datum["image/object/mask"] = (np.concatenate([m.reshape(-1) for m in masks]).astype(np.float32).tolist(),
                                      "float")
    else:
        datum["image/object/mask"] = ([png_bytes(m) for m in masks], "byte")
    return datum, {"image": image, "masks": masks, "boxes": boxes, "labels": labels}


def write_records(path, examples):
    writer = tfrecord_writer.TFRecordWriter(str(path))
    for datum, _ in examples:
        writer.write(datum)
    writer.close()


def dump(*args):
    result = subprocess.run([str(TEST_BIN_DIR / "dataset_dump"), "tfrecord", "", *map(str, args)],
                            capture_output=True, text=True, timeout=120)
    return result


def check_sample(sample, truth):
    from pycocotools import mask as mask_utils

    height, width = truth["image"].shape[:2]
    assert (sample["height"], sample["width"]) == (height, width)
    assert sample["pixel_sum"] == int(truth["image"].astype(np.int64).sum())
    assert sample["labels"] == truth["labels"]
    for box, (x0, y0, x1, y1) in zip(sample["boxes"], truth["boxes"]):
        assert box == pytest.approx([x0 * width, y0 * height, x1 * width, y1 * height], abs=1e-3)
    for counts, mask in zip(sample["masks"], truth["masks"]):
        assert counts == mask_utils.encode(np.asfortranarray(mask))["counts"].decode()


@pytest.mark.parametrize("float_masks", [False, True], ids=["png_masks", "float_masks"])
def test_records_read_back_feature_by_feature(tmp_path, float_masks):
    rng = np.random.default_rng(3)
    shards = []
    for shard in range(2):
        examples = [make_example(10 * shard + i + 1, rng, float_masks=float_masks) for i in range(3)]
        write_records(tmp_path / f"train.record-{shard:05d}-of-00002", examples)
        shards += examples
    for pattern in ("train.record-?????-of-00002", "train.record@2"):
        result = dump(tmp_path / pattern, 4)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert [s["image_id"] for s in out["samples"]] == [1, 2, 3, 11, 12, 13]
        assert [s["image_path"] for s in out["samples"]] == [f"img{i}.png" for i in (1, 2, 3, 11, 12, 13)]
        for sample, (_, truth) in zip(out["samples"], shards):
            check_sample(sample, truth)


def test_corrupt_and_truncated_records_are_reported_and_skipped(tmp_path):
    rng = np.random.default_rng(5)
    examples = [make_example(i + 1, rng) for i in range(4)]
    write_records(tmp_path / "good.record", examples)
    data = bytearray((tmp_path / "good.record").read_bytes())
    # Record offsets: each is 8 (length) + 4 (crc) + n + 4 (crc).
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + int.from_bytes(data[pos:pos + 8], "little")
    corrupt = bytearray(data)
    corrupt[offsets[1] + 40] ^= 0xFF  # a byte inside record 1's data: its data CRC fails
    (tmp_path / "bad-crc.record").write_bytes(bytes(corrupt))
    (tmp_path / "cut.record").write_bytes(bytes(data[:offsets[3] + 30]))  # record 3 truncated

    result = dump(tmp_path / "bad-crc.record", 4)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [s["image_id"] for s in out["samples"]] == [1, 3, 4]
    assert out["skipped_images"] == 1
    assert f"bad-crc.record: record at byte {offsets[1]}: data CRC mismatch" in out["summary"]
    for sample, idx in zip(out["samples"], (0, 2, 3)):
        check_sample(sample, examples[idx][1])

    result = dump(tmp_path / "cut.record", 4)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [s["image_id"] for s in out["samples"]] == [1, 2, 3]
    assert f"cut.record: record at byte {offsets[3]} is truncated" in out["summary"]

    result = dump(tmp_path / "bad-crc.record", 4, "fail")
    assert result.returncode == 2
    assert f"record at byte {offsets[1]}: data CRC mismatch" in result.stderr

    result = dump(tmp_path / "nothing-*.record", 4)
    assert result.returncode == 2 and "no TFRecord files match" in result.stderr


def test_labels_outside_the_model_are_skipped(tmp_path):
    rng = np.random.default_rng(9)
    write_records(tmp_path / "r.record", [make_example(1, rng, objects=3)])  # labels 1, 2, 3
    out = json.loads(dump(tmp_path / "r.record", 3).stdout)  # classes 1..2
    assert out["samples"][0]["labels"] == [1, 2]
    assert out["skipped_annotations"] == 1
