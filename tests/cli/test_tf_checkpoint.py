"""mrcnn's TF checkpoint reader against TensorFlow itself: checkpoints written by tensorflow-cpu in
the test run (tf.train.Checkpoint with nested objects and a Keras model with optimizer slots,
tf.compat.v1 Saver sharded and not, a SavedModel, every supported dtype) read back bit for bit,
listed by `mrcnn-config tf-variables`, and corrupt or hostile ones refused with one error line."""
import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mrcnn_testing import TEST_BIN_DIR, assert_one_error, masked_crc, run_tool, tensorflow_python, tfod_reference_model

CASES = ["tf2", "tf1", "tf1_sharded", "saved_model", "partitioned"]
DTYPES = {"float32", "float16", "bfloat16", "float64", "int32", "int64", "bool", "string"}
WIDTHS = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int32": 4, "int64": 8, "bool": 1}
SLOT = "/.OPTIMIZER_SLOT/"
VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The checkpoints and what TF reads from them (tests/cli/tf_checkpoint_writer.py)."""
    python = tensorflow_python()
    out = tmp_path_factory.mktemp("tf_checkpoints")
    writer = subprocess.run([str(python), str(Path(__file__).with_name("tf_checkpoint_writer.py")),
                             str(out)], capture_output=True, text=True, timeout=600)
    assert writer.returncode == 0, writer.stderr[-3000:]
    return out, json.loads((out / "prefixes.json").read_text())


def load_manifest(folder):
    """{key: row} with each tensor's bytes (or strings) read in."""
    rows = json.loads((folder / "manifest.json").read_text())
    for row in rows:
        row["value"] = (folder / row["file"]).read_bytes() if "file" in row else row["strings_hex"]
    return {row["key"]: row for row in rows}


def user_path(case, prefix):
    """Each case named a different way a user may name it: prefix, .index, folder with a
    `checkpoint` file, SavedModel folder."""
    return {"tf2": prefix, "tf1": prefix + ".index", "tf1_sharded": str(Path(prefix).parent),
            "saved_model": prefix.rsplit("/variables/", 1)[0], "partitioned": prefix}[case]


@pytest.mark.parametrize("case", CASES)
def test_values_match_tensorflow_bit_for_bit(written, tmp_path, case):
    out, prefixes = written
    dump = subprocess.run([str(TEST_BIN_DIR / "tf_checkpoint_dump"), user_path(case, prefixes[case]), str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    ours, theirs = load_manifest(tmp_path / "d"), load_manifest(out / f"{case}.expected")
    assert sorted(ours) == sorted(theirs)
    for key, expected in theirs.items():
        assert (ours[key]["dtype"], ours[key]["shape"]) == (expected["dtype"], expected["shape"]), key
        assert ours[key]["value"] == expected["value"], key
    if case != "partitioned":
        assert DTYPES <= {row["dtype"] for row in theirs.values()}


@pytest.mark.parametrize("case", CASES)
def test_listing_matches_tensorflow(written, tmp_path, case):
    out, prefixes = written
    result = run_tool(tmp_path, "mrcnn-config", "tf-variables", user_path(case, prefixes[case]), "--json", "list.json")
    assert result.returncode == 0, result.stderr
    listed = {row["key"]: row for row in json.loads((tmp_path / "list.json").read_text())["tensors"]}
    expected = load_manifest(out / f"{case}.expected")
    assert sorted(listed) == sorted(expected)
    for key, row in listed.items():
        assert (row["dtype"], row["shape"]) == (expected[key]["dtype"], expected[key]["shape"]), key
        if row["dtype"] != "string":
            assert row["bytes"] == len(expected[key]["value"]) == np.prod(row["shape"], dtype=int) * WIDTHS[row["dtype"]]
    assert len(result.stdout.splitlines()) == len(listed)
    if case.startswith("tf1") or case == "partitioned":
        assert all(row["name"] == row["path"] == key for key, row in listed.items())


def test_object_graph_names_and_paths(written, tmp_path):
    """TF2 keys resolved through the object graph: each variable's own name where it is unique
    (Keras layer names), else its object path; slot variables under their variable's path."""
    out, prefixes = written
    result = run_tool(tmp_path, "mrcnn-config", "tf-variables", prefixes["tf2"], "--json", "list.json")
    assert result.returncode == 0, result.stderr
    listed = {row["key"]: row for row in json.loads((tmp_path / "list.json").read_text())["tensors"]}
    full_names = json.loads((out / "tf2.expected" / "full_names.json").read_text())
    counts = {name: list(full_names.values()).count(name) for name in full_names.values()}
    for key, row in listed.items():
        if SLOT in key:  # <variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot>/.ATTRIBUTES/VARIABLE_VALUE
            variable, rest = key[: -len(VALUE)].split(SLOT)
            assert row["path"] == f"{variable}/{rest.rsplit('/', 1)[1]}", key
        elif key.endswith(VALUE):
            assert row["path"] == key[: -len(VALUE)], key
        if key in full_names:
            unique = full_names[key] and counts[full_names[key]] == 1
            assert row["name"] == (full_names[key] if unique else row["path"]), key
    kernel = "model/layer_with_weights-0/kernel" + VALUE
    assert listed[kernel]["name"] == "dense/kernel"
    assert f"dense/kernel  float32  [3,4]  48  key={kernel}" in result.stdout.splitlines()
    assert sum(SLOT in key for key in listed) == 12  # Adam's m and v of 6 variables


def test_partitioned_variable_listed_once(written, tmp_path):
    """As tf.train.list_variables: the variable with its full shape, its slices not listed (their
    values put together are compared with TF's in test_values_match_tensorflow_bit_for_bit)."""
    out, prefixes = written
    result = run_tool(tmp_path, "mrcnn-config", "tf-variables", prefixes["partitioned"], "--json", "list.json")
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "list.json").read_text())["tensors"]
    assert [(row["key"], row["shape"], row.get("partitioned")) for row in rows] == [("emb", [7, 2], True),
                                                                                   ("grid", [7, 3, 5], True)]
    assert result.stdout.splitlines() == ["emb  float32  [7,2]  56  (partitioned in 3 slices)",
                                          "grid  float64  [7,3,5]  840  (partitioned in 3 slices)"]


def copy_case(written, tmp_path, case):
    out, prefixes = written
    source = Path(prefixes[case]).parent
    shutil.copytree(source, tmp_path / case)
    return str(tmp_path / case / Path(prefixes[case]).name)


def list_variables(tmp_path, path):
    return run_tool(tmp_path, "mrcnn-config", "tf-variables", path)


def test_flipped_data_byte_names_the_tensor(written, tmp_path):
    prefix = copy_case(written, tmp_path, "tf2")
    shard = tmp_path / "tf2" / "ckpt-1.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    big = (np.arange(4096, dtype=np.float32) * 0.25 + 1000.0).tobytes()
    at = data.find(big)
    assert at >= 0
    data[at + 5000] ^= 0x01
    shard.write_bytes(bytes(data))
    assert_one_error(list_variables(tmp_path, prefix), "mrcnn-config", str(shard), "values/values/big" + VALUE,
                     "CRC-32C mismatch")


def test_truncated_files(written, tmp_path):
    prefix = copy_case(written, tmp_path, "tf2")
    index = tmp_path / "tf2" / "ckpt-1.index"
    whole = index.read_bytes()
    index.write_bytes(whole[: len(whole) // 2])
    assert_one_error(list_variables(tmp_path, prefix), "mrcnn-config", str(index), "table magic")
    index.write_bytes(whole)
    shard = tmp_path / "tf2" / "ckpt-1.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:-100])
    assert_one_error(list_variables(tmp_path, prefix), "mrcnn-config", str(shard), "runs past the end")


def test_missing_shard(written, tmp_path):
    prefix = copy_case(written, tmp_path, "tf1_sharded")
    (tmp_path / "tf1_sharded" / "model.ckpt.data-00001-of-00002").unlink()
    assert_one_error(list_variables(tmp_path, prefix), "mrcnn-config", "model.ckpt.data-00001-of-00002", "missing")


def test_no_checkpoint_at_path(tmp_path):
    assert_one_error(list_variables(tmp_path, "nothing/ckpt-9"), "mrcnn-config", "nothing/ckpt-9.index",
                     "no TF checkpoint here")


def test_saved_model_without_variables_is_named(tmp_path):
    """A TF1 export's saved_model/ (weights frozen into saved_model.pb, variables/ empty): one error
    line saying so, for the listing and for the TF OD API family's loader."""
    from PIL import Image

    (tmp_path / "saved_model" / "variables").mkdir(parents=True)
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"\x08\x01")
    assert_one_error(list_variables(tmp_path, "saved_model"), "mrcnn-config", "saved_model: a SavedModel without "
                     "variables/variables.index", "frozen into the graph (a TF1 export)")
    (tmp_path / "c.json").write_text('{"model": {"arch": "tf_faster_rcnn", "num_classes": 4}}')
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    result = run_tool(tmp_path, "mrcnn-infer", "-c", "c.json", "-w", "saved_model", "-i", "a.png", "-o", "dt.json")
    assert_one_error(result, "mrcnn-infer", "saved_model: a SavedModel without variables/variables.index")


# --- hand-made indexes: hostile sizes, refused before anything is allocated ---

def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def field(number, value):
    """A protobuf field: ints as varints, bytes as length-delimited."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def sstable(entries):
    """A one-data-block LevelDB table (no prefix compression) as TF writes checkpoint indexes."""
    def block(items):
        body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in items)
        return body + struct.pack("<II", 0, 1)  # one restart point at 0

    def with_trailer(contents):
        return contents + b"\0" + struct.pack("<I", masked_crc(contents + b"\0"))

    data = with_trailer(block(entries))
    index = with_trailer(block([(entries[-1][0], varint(0) + varint(len(data) - 5))]))
    handles = varint(len(data) + len(index)) + varint(0) + varint(len(data)) + varint(len(index) - 5)
    footer = handles.ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    return data + index + footer


def entry(shape, size, offset=0, dtype=1):
    dims = b"".join(field(2, field(1, d)) for d in shape)
    return field(1, dtype) + field(2, dims) + field(4, offset) + field(5, size) + varint(6 << 3 | 5) + b"\0\0\0\0"


@pytest.mark.parametrize("header, value, fragment", [
    (field(1, 1), entry([1 << 40, 1 << 40], 16), "more than 2^56 elements"),
    (field(1, 1), entry([4], 1 << 40), "stored size 1099511627776 bytes, the shape needs 16"),
    (field(1, 1), entry([4], 16, offset=1 << 62), "runs past the end"),
    (field(1, 1 << 30), entry([4], 16), "shards"),
    (field(1, 1) + field(2, 1), entry([4], 16), "big-endian"),
], ids=["elements", "size", "offset", "shards", "endianness"])
def test_hostile_index(tmp_path, header, value, fragment):
    (tmp_path / "h.index").write_bytes(sstable([(b"", header), (b"w", value)]))
    (tmp_path / "h.data-00000-of-00001").write_bytes(bytes(16))
    result = run_tool(tmp_path, "mrcnn-config", "tf-variables", "h", address_space=2 << 30)
    assert_one_error(result, "mrcnn-config", "h.", fragment)


def test_unsupported_dtype_listed_not_read(tmp_path):
    """A variant tensor (tf.data iterator state) is listed, as TF lists it; reading it is refused."""
    (tmp_path / "h.index").write_bytes(sstable([(b"", field(1, 1)), (b"w", entry([4], 16, dtype=21))]))
    (tmp_path / "h.data-00000-of-00001").write_bytes(bytes(16))
    result = run_tool(tmp_path, "mrcnn-config", "tf-variables", "h")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "w  dtype 21  [4]  16  (not read: dtype not supported)\n"
    assert "1 not read (dtype not supported)" in result.stderr
    dump = subprocess.run([str(TEST_BIN_DIR / "tf_checkpoint_dump"), "h", "d"], cwd=tmp_path, capture_output=True, text=True)
    assert dump.returncode == 2 and "h.data-00000-of-00001: tensor 'w': dtype 21 not supported" in dump.stderr


# --- the real TF OD API model (../shared/tfod-reference): the checkpoint this reader exists for ---

# The model section of the TF OD API's mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config
# (reference.py overrides the resizer, classes and proposals).
IRV2_CONFIG = """model { faster_rcnn {
  number_of_stages: 3 num_classes: 90
  image_resizer { fixed_shape_resizer { height: 1024 width: 1024 } }
  feature_extractor { type: 'faster_rcnn_inception_resnet_v2_keras' }
  first_stage_anchor_generator { grid_anchor_generator {
    scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0] height_stride: 16 width_stride: 16 } }
  first_stage_box_predictor_conv_hyperparams { op: CONV regularizer { l2_regularizer { weight: 0.0 } }
    initializer { truncated_normal_initializer { stddev: 0.01 } } }
  first_stage_nms_score_threshold: 0.0 first_stage_nms_iou_threshold: 0.7 first_stage_max_proposals: 300
  first_stage_localization_loss_weight: 2.0 first_stage_objectness_loss_weight: 1.0
  initial_crop_size: 17 maxpool_kernel_size: 1 maxpool_stride: 1
  second_stage_box_predictor { mask_rcnn_box_predictor {
    use_dropout: false dropout_keep_probability: 1.0
    fc_hyperparams { op: FC regularizer { l2_regularizer { weight: 0.0 } }
      initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } } }
    mask_height: 33 mask_width: 33 mask_prediction_conv_depth: 0 mask_prediction_num_conv_layers: 4
    conv_hyperparams { op: CONV regularizer { l2_regularizer { weight: 0.0 } }
      initializer { truncated_normal_initializer { stddev: 0.01 } } }
    predict_instance_masks: true } }
  second_stage_post_processing {
    batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6 max_detections_per_class: 100
                                max_total_detections: 100 }
    score_converter: SOFTMAX }
  second_stage_localization_loss_weight: 2.0 second_stage_classification_loss_weight: 1.0
  second_stage_mask_prediction_loss_weight: 4.0 resize_masks: false } }
"""

# sha256 of every tensor's bytes as TF reads them (the object graph: of its one string).
TF_HASHES = """import hashlib, json, sys
import numpy as np, tensorflow as tf
reader = tf.train.load_checkpoint(sys.argv[1])
def raw(v):
    return v if isinstance(v, bytes) else np.asarray(v).tobytes()
print(json.dumps({k: [reader.get_variable_to_dtype_map()[k].name, s, hashlib.sha256(raw(reader.get_tensor(k))).hexdigest()]
                  for k, s in reader.get_variable_to_shape_map().items()}))
"""


def test_tf_od_api_inception_resnet_v2_checkpoint(tmp_path):
    """The TF OD API's Mask R-CNN Inception-ResNet-v2 checkpoint (916 keys, 240 MB; the one the TF
    tests share, mrcnn_testing.tfod_reference_model): listed with names from its object graph, and
    every tensor equal to what TF reads."""
    model = tfod_reference_model()
    python = tensorflow_python()
    (tmp_path / "ref").symlink_to(model / "ckpt")
    hashes = subprocess.run([str(python), "-c", TF_HASHES, "ref/ckpt-1"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert hashes.returncode == 0, hashes.stderr[-3000:]
    expected = json.loads(hashes.stdout)
    dump = subprocess.run([str(TEST_BIN_DIR / "tf_checkpoint_dump"), "ref", "dump"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert dump.returncode == 0, dump.stderr
    ours = {row["key"]: [row["dtype"], row["shape"], hashlib.sha256(
        (tmp_path / "dump" / row["file"]).read_bytes() if "file" in row else bytes.fromhex(row["strings_hex"][0])).hexdigest()]
        for row in json.loads((tmp_path / "dump" / "manifest.json").read_text())}
    assert len(ours) == 916 and ours == expected
    listing = run_tool(tmp_path, "mrcnn-config", "tf-variables", "ref", "--json", "list.json", timeout=120)
    assert listing.returncode == 0, listing.stderr
    names = [row["name"] for row in json.loads((tmp_path / "list.json").read_text())["tensors"]]
    assert len(set(names)) == 916 and "conv2d/kernel" in names  # Keras layer names, unique here
