"""Writes the fuzz targets' generated seeds (binary formats and files built from the test suite's
own data) into OUT/<target>/: scripts/fuzz.sh runs it once per fuzz build. Run with the project's
.venv (torch, numpy, pycocotools, the tfrecord package)."""
import io
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_api
import crc32c
from tfrecord import example_pb2

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "cli")]
import coco_cases  # noqa: E402  (the evaluation tests' randomised COCO cases)
from mrcnn_testing import write_safetensors  # noqa: E402
import test_mrcnn_config_import_tf as import_tf_cases  # noqa: E402  (pipeline.config files of the tests)


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def compressed_rle(mask):
    return mask_api.encode(np.asfortranarray(mask))["counts"].decode()


def random_mask(rng, h, w):
    mask = np.zeros((h, w), np.uint8)
    y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
    mask[y:y + int(rng.integers(1, h + 1)), x:x + int(rng.integers(1, w + 1))] = 1
    return mask


def tf_example(rng, h, w, objects, float_masks):
    """A TF OD API record: image, normalised boxes, labels, PNG or float masks."""
    masks = [random_mask(rng, h, w) for _ in range(objects)]
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append((xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h))
    feature = {
        "image/height": ("int64", [h]), "image/width": ("int64", [w]),
        "image/filename": ("bytes", [b"a.png"]), "image/source_id": ("bytes", [b"7"]),
        "image/encoded": ("bytes", [png(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))]),
        "image/format": ("bytes", [b"png"]),
        "image/object/bbox/xmin": ("float", [b[0] for b in boxes]),
        "image/object/bbox/ymin": ("float", [b[1] for b in boxes]),
        "image/object/bbox/xmax": ("float", [b[2] for b in boxes]),
        "image/object/bbox/ymax": ("float", [b[3] for b in boxes]),
        "image/object/class/label": ("int64", [k % 3 + 1 for k in range(objects)]),
        "image/object/mask": ("float", np.concatenate([m.reshape(-1) for m in masks]).astype(float).tolist())
        if float_masks else ("bytes", [png(m) for m in masks]),
    }
    example = example_pb2.Example()
    for key, (kind, values) in feature.items():
        getattr(example.features.feature[key], kind + "_list").value.extend(values)
    return example.SerializeToString()


def framed(record):
    """The record in TFRecord framing: length, its masked CRC-32C, data, its masked CRC-32C."""
    def masked(data):
        crc = crc32c.crc32c(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked(length)) + record + struct.pack("<I", masked(record))


def main(out):
    rng = np.random.default_rng(17)

    def seed(target, name, data):
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())

    for name in ("TF1_MASK_RCNN", "TF2_COSINE"):
        seed("fuzz_pipeline_config", name.lower() + ".config", getattr(import_tf_cases, name))

    for k in range(3):
        gt, dts = coco_cases.make_case(k, images=2, categories=(1, 3, 7), max_scale=12, extra_max=2)
        seed("fuzz_coco_gt", f"case{k}.json", json.dumps(gt))
        seed("fuzz_rle_json", f"case{k}.json", json.dumps(dts[0]["segmentation"]) if dts else "[]")

    for k, (h, w) in enumerate([(1, 1), (3, 5), (16, 16), (24, 32), (64, 9), (200, 255)]):
        seed("fuzz_rle_string", f"mask{k}", bytes([h, w]) + compressed_rle(random_mask(rng, h, w)).encode())
    seed("fuzz_rle_string", "empty", bytes([4, 4]) + compressed_rle(np.zeros((4, 4), np.uint8)).encode())

    records = [tf_example(rng, 6, 8, objects, float_masks) for objects, float_masks in [(1, False), (3, False), (2, True)]]
    for k, record in enumerate(records):
        seed("fuzz_tf_example", f"record{k}", record)
    seed("fuzz_tf_example", "no_objects", tf_example(rng, 4, 4, 0, False))
    for k in range(2):
        seed("fuzz_tfrecord", f"file{k}.tfrecord", b"".join(framed(r) for r in records[k:k + 2]))

    seed("fuzz_safetensors", "small.safetensors", safetensors({
        "conv.weight": torch.randn(2, 1, 2, 2), "conv.bias": torch.zeros(2), "steps": torch.tensor([3]),
        "mask": torch.tensor([1, 0], dtype=torch.uint8), "half": torch.ones(2, dtype=torch.float16)},
        metadata={"format": "pt", "mrcnn.step": "3"}))
    seed("fuzz_safetensors", "empty.safetensors", safetensors({}))

    state = {"conv.weight": torch.randn(2, 1, 2), "conv.bias": torch.zeros(2), "step": torch.tensor(3)}
    shared = torch.arange(6.0)
    nested = {"model": state, "views": {"a": shared[:3], "b": shared[3:].view(1, 3)}, "epoch": 2, "name": "x"}
    for name, obj in [("state", state), ("nested", nested)]:
        seed("fuzz_torch_pickle", f"{name}_zip.pth", torch_save(obj, zip_format=True))
        seed("fuzz_torch_pickle", f"{name}_legacy.pth", torch_save(obj, zip_format=False))


def safetensors(tensors, metadata=None):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.safetensors"
        write_safetensors(path, tensors, metadata)
        return path.read_bytes()


def torch_save(obj, zip_format):
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=zip_format)
    return buffer.getvalue()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
