"""Hostile binary inputs through the real tools: torch.save pickles (legacy and zip form) nested a
million deep, containing themselves, shared over and over, with opcodes on an empty stack or
tensors outside their storages; safetensors headers whose shapes overflow; TFRecords claiming 4 GB
records and tf.Examples whose sizes overflow. Each file is made by hand in the test; each must end
in exit 2 with one "<tool>: error: " line naming the file, within seconds and in bounded memory.
Weights full of NaN load with a warning."""
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from mrcnn_testing import SMALL_MODEL_CONFIG, assert_one_error, masked_crc, run_tool, write_safetensors

# Address space for a tool that must not allocate what a hostile file claims. libtorch tools map
# a lot of virtual memory when they start (CUDA libraries); see test_memory_limit_allows_a_normal_run.
MEMORY_LIMIT = 6 << 30
DEEP = 1_000_000


def assert_refused(result, tool, *fragments):
    """The one error line (assert_one_error), and no log line here mentions an error either."""
    line = assert_one_error(result, tool, *fragments)
    assert [l for l in result.stderr.splitlines() if "error" in l.lower()] == [line], result.stderr
    return line


# --- pickles, opcode by opcode (protocol 2, as torch.save writes them) ---

PROTO = b"\x80\x02"


def s(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(value):
    return b"J" + struct.pack("<i", value)


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def tensor(key, numel, sizes, strides, offset=0, storage="FloatStorage"):
    """torch._utils._rebuild_tensor_v2 over storage `key` of numel elements."""
    pid = tup(s("storage"), glob("torch", storage), s(key), s("cpu"), i(numel), b"N") + b"Q"
    args = tup(pid, i(offset), tup(*map(i, sizes)), tup(*map(i, strides)), b"\x89",
               glob("collections", "OrderedDict") + b")R")
    return glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def state_dict(**entries):
    return PROTO + b"}(" + b"".join(s(k) + v for k, v in entries.items()) + b"u."


# What comes before the object in the pre-1.6 torch.save layout: magic, protocol, system info.
LEGACY_HEAD = b"".join(pickle.dumps(v, protocol=2) for v in (
    0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001, "little_endian": True,
                                  "type_sizes": {"short": 2, "int": 4, "long": 4}}))


def legacy_file(path, object_pickle, storages):
    """The pre-1.6 torch.save layout: LEGACY_HEAD, the object, its storage keys, then each storage
    as an int64 count and the bytes."""
    head = LEGACY_HEAD
    tail = pickle.dumps(list(storages), protocol=2)
    tail += b"".join(struct.pack("<q", a.size) + a.tobytes() for a in storages.values())
    path.write_bytes(head + object_pickle + tail)
    return path


def zip_file(path, data_pkl, storages):
    """torch.save's zip layout (taken from a real torch.save) with our data.pkl and storages."""
    torch = pytest.importorskip("torch")
    template = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, template)
    with zipfile.ZipFile(template) as z_in, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z_out:
        prefix = z_in.namelist()[0].split("/")[0]
        for info in z_in.infolist():
            name = info.filename[len(prefix) + 1:]
            if name != "data.pkl" and not name.startswith("data/"):
                z_out.writestr(info.filename, z_in.read(info))
        z_out.writestr(f"{prefix}/data.pkl", data_pkl)
        for key, array in storages.items():
            z_out.writestr(f"{prefix}/data/{key}", array.tobytes())
    return path


FOUR = {"0": np.arange(4, dtype=np.float32)}  # storage '0' of the tensors below


def make_weights(folder, form, data_pkl, storages=None):
    """The pickle in a legacy or zip file, with these storages (none by default)."""
    storages = storages or {}
    maker = legacy_file if form == "legacy" else zip_file
    return maker(folder / f"{form}.pth", data_pkl, storages)


@pytest.fixture
def infer_weights(tmp_path):
    """infer_weights(path): mrcnn-infer with these weights on one small image."""
    from PIL import Image

    (tmp_path / "model.json").write_text(json.dumps(SMALL_MODEL_CONFIG))
    Image.fromarray(np.full((64, 80, 3), 120, np.uint8)).save(tmp_path / "img.png")

    def infer(weights):
        return run_tool(tmp_path, "mrcnn-infer", "-c", "model.json", "-w", weights, "-i", "img.png", "-o", "dt.json",
                        address_space=MEMORY_LIMIT)
    return infer


FORMS = ["legacy", "zip"]


@pytest.mark.parametrize("form", FORMS)
def test_hand_made_files_load(tmp_path, infer_weights, form):
    """The builders above make files the reader accepts: the error is about the model, not the file."""
    weights = make_weights(tmp_path, form, state_dict(w=tensor("0", 4, [2, 2], [2, 1])), FOUR)
    result = infer_weights(weights)
    assert result.returncode == 2 and f"{form}.pth: weights do not fit this model" in result.stderr
    assert f"{form}.pth: unexpected: w\n" in result.stderr


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("nest,message", [
    (PROTO + b"}" + (s("a") + b"}") * DEEP + b"s" * DEEP + b".", "dicts nested deeper than 1000 levels"),
    (PROTO + b"]" * (DEEP + 1) + b"a" * DEEP + b".", "holds no tensors"),
    (PROTO + b"(" * DEEP + b"t" * DEEP + b".", "holds no tensors"),
], ids=["dicts", "lists", "tuples"])
def test_million_deep_nests(tmp_path, infer_weights, form, nest, message):
    weights = make_weights(tmp_path, form, nest)
    assert_refused(infer_weights(weights), "mrcnn-infer", f"{form}.pth", message)


def shared_levels(levels):
    """D0 = {}, D(k+1) = {"a": Dk, "b": Dk}: 2^levels key paths through a few hundred bytes."""
    body = b"}q\x00"
    for k in range(1, levels + 1):
        get = b"h" + bytes([k - 1])
        body += b"}(" + s("a") + get + s("b") + get + b"uq" + bytes([k])
    return PROTO + body + b"."


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("data_pkl,messages", [
    (PROTO + b"}q\x00" + s("a") + b"h\x00s.", ["dict 'a' contains itself"]),
    (shared_levels(60), ["dict entries to walk", "key paths total more than"]),
], ids=["self_containing", "shared_2^60_times"])
def test_self_containing_and_shared_dicts(tmp_path, infer_weights, form, data_pkl, messages):
    line = assert_refused(infer_weights(make_weights(tmp_path, form, data_pkl)), "mrcnn-infer", f"{form}.pth")
    assert any(m in line for m in messages), line


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("data_pkl,offset,message", [
    (PROTO + b"a.", 2, "(opcode 0x61): the stack is empty"),
    (PROTO + b"]e.", 3, "(opcode 0x65): no MARK on the stack"),
    (PROTO + b"h\x05.", 2, "(opcode 0x68): memo key 5 was never stored"),
    (PROTO + b"q\x00.", 2, "(opcode 0x71): the stack is empty"),
    (PROTO + s("abc")[:1] + b"\xff\xff\0\0", 2, "(opcode 0x58): truncated"),
    (PROTO + b"\xff.", 2, "(opcode 0xff): unsupported pickle opcode"),
], ids=["append", "appends", "binget", "binput", "truncated", "unknown"])
def test_broken_opcodes_name_file_and_offset(tmp_path, infer_weights, form, data_pkl, offset, message):
    """The offset counts from the file's start (legacy) or from data.pkl's (zip)."""
    where = f"legacy.pth: unreadable pickle data at byte {len(LEGACY_HEAD) + offset} " if form == "legacy" else \
        f"zip.pth (data.pkl): unreadable pickle data at byte {offset} "
    assert_refused(infer_weights(make_weights(tmp_path, form, data_pkl)), "mrcnn-infer", where + message)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("record,message", [
    (tensor("0", 4, [100], [1]), "tensor 'w': sizes [100], strides [1] and offset 0 do not fit its storage '0' of 4"),
    (tensor("0", 4, [4], [1], offset=10), "tensor 'w': sizes [4], strides [1] and offset 10 do not fit"),
    (tensor("0", 4, [4], [-1]), "tensor 'w': sizes [4], strides [-1] and offset 0 do not fit"),
    (tensor("0", 4, [-4], [1]), "tensor 'w': sizes [-4]"),
    (tensor("0", 4, [2**30, 2**30, 2**30], [2**30, 2**30, 1]), "tensor 'w': sizes [1073741824"),
    (tensor("0", 4, [4], [1], storage="FooStorage"), "storage '0': unsupported tensor storage type torch.FooStorage"),
], ids=["sizes", "offset", "negative_stride", "negative_size", "overflowing_reach", "storage_type"])
def test_tensors_outside_their_storage(tmp_path, infer_weights, form, record, message):
    weights = make_weights(tmp_path, form, state_dict(w=record), FOUR)
    assert_refused(infer_weights(weights), "mrcnn-infer", f"{form}.pth", message)


@pytest.mark.parametrize("form,message", [("legacy", "elements cannot be in a file of"),
                                          ("zip", "elements do not fill its 16 bytes")])
def test_storage_larger_than_the_file(tmp_path, infer_weights, form, message):
    weights = make_weights(tmp_path, form, state_dict(w=tensor("0", 2**31 - 1, [4], [1])), FOUR)
    assert_refused(infer_weights(weights), "mrcnn-infer", f"{form}.pth", "storage '0'", message)


def test_truncated_archive_and_fifo(tmp_path, infer_weights):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(1000)}, tmp_path / "full.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "full.pth").read_bytes()[:3000])
    assert_refused(infer_weights("cut.pth"), "mrcnn-infer", "cut.pth: damaged torch.save file")
    os.mkfifo(tmp_path / "fifo.pth")
    assert_refused(infer_weights("fifo.pth"), "mrcnn-infer", "fifo.pth: cannot read: it is a named pipe")


def test_zip_record_claiming_more_than_the_file(tmp_path, infer_weights):
    """A record (the version, which libtorch extracts while opening the archive) claiming 4 GB in
    the zip directory is refused before anything is allocated for it."""
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(4)}, tmp_path / "model.pth")
    data = bytearray((tmp_path / "model.pth").read_bytes())
    entry = next(at for at in range(len(data)) if data[at:at + 4] == b"PK\x01\x02" and
                 data[at + 46:at + 46 + struct.unpack_from("<H", data, at + 28)[0]].endswith(b"/version"))
    struct.pack_into("<I", data, entry + 24, 0xFFFFFFF0)  # 0xFFFFFFFF would mean "see the ZIP64 field"
    (tmp_path / "big.pth").write_bytes(data)
    assert_refused(infer_weights("big.pth"), "mrcnn-infer", "big.pth", "version", "claims 4294967280 bytes",
                   "more than the file's")


# --- safetensors ---

def raw_safetensors(path, header, data=b"", length=None):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


@pytest.mark.parametrize("header,message", [
    ({"w": {"dtype": "F32", "shape": [2**62 + 1, 4], "data_offsets": [0, 16]}},
     "tensor 'w': shape [4611686018427387905,4] has more elements than 64 bits count"),
    ({"w": {"dtype": "F32", "shape": [2**32, 2**32], "data_offsets": [0, 16]}}, "more elements than 64 bits count"),
    ({"w": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 16]}},
     "holds 16 bytes but its shape and dtype need 4398046511104"),
    ({"w": {"dtype": "F32", "shape": [2**63], "data_offsets": [0, 16]}}, "not an integer from 0 to 2^63-1"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 10**12]}}, "fall outside the 16 data bytes"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, "data_offsets [16, 0] fall outside"),
], ids=["overflow", "overflow_2^64", "beyond_file", "dim_2^63", "offsets_beyond", "offsets_reversed"])
def test_safetensors_shapes_and_offsets(tmp_path, infer_weights, header, message):
    weights = raw_safetensors(tmp_path / "w.safetensors", header, b"\0" * 16)
    assert_refused(infer_weights(weights), "mrcnn-infer", "w.safetensors: not a valid safetensors file", message)


def test_safetensors_header_length_and_depth(tmp_path, infer_weights):
    weights = raw_safetensors(tmp_path / "long.safetensors", b"{}", length=2**63)
    assert_refused(infer_weights(weights), "mrcnn-infer", "long.safetensors: not a valid safetensors file: header "
                   "length 9223372036854775808 exceeds the file")
    weights = raw_safetensors(tmp_path / "deep.safetensors", b"[" * 100_000 + b"]" * 100_000)
    assert_refused(infer_weights(weights), "mrcnn-infer", "deep.safetensors (header):")


# --- weights full of NaN ---

def test_non_finite_weights_load_with_a_warning(tmp_path, infer_weights, small_model):
    torch = pytest.importorskip("torch")
    state = torch.load(small_model[0])
    first = next(iter(state))
    state[first].fill_(float("nan"))
    state["roi_heads.box_predictor.cls_score.bias"][0] = float("inf")
    torch.save(state, tmp_path / "nan.pth")
    result = infer_weights("nan.pth")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "NaN or infinite" in line]
    assert len(warnings) == 1 and "warning" in warnings[0], result.stderr
    assert f"nan.pth: 2 of the loaded tensors hold NaN or infinite values, the first '{first}'" in warnings[0]
    write_safetensors(tmp_path / "finite.safetensors", {k: v for k, v in torch.load(small_model[0]).items()
                                                        if v.dtype != torch.int64})
    assert "NaN" not in infer_weights("finite.safetensors").stderr


# --- TFRecords and tf.Example ---

def framed(record, length=None):
    header = struct.pack("<Q", len(record) if length is None else length)
    return header + struct.pack("<I", masked_crc(header)) + record + struct.pack("<I", masked_crc(record))


def varint(value):
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def example(**features):
    """A tf.train.Example: ints as Int64List, floats as packed FloatList, bytes as BytesList."""
    entries = b""
    for key, value in features.items():
        values = value if isinstance(value, list) else [value]
        if isinstance(values[0], bytes):
            feature = field(1, b"".join(field(1, v) for v in values))
        elif isinstance(values[0], float):
            feature = field(2, field(1, struct.pack(f"<{len(values)}f", *values)))
        else:
            feature = field(3, field(1, b"".join(varint(v) for v in values)))
        entries += field(1, field(1, key.replace("__", "/").encode()) + field(2, feature))
    return field(1, entries)


def png(array):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def detection_example(height, width, masks):
    return example(image__height=height, image__width=width, image__encoded=png(np.zeros((8, 8, 3), np.uint8)),
                   image__object__bbox__xmin=[0.1], image__object__bbox__ymin=[0.1], image__object__bbox__xmax=[0.5],
                   image__object__bbox__ymax=[0.5], image__object__class__label=[1], image__object__mask=masks)


def tfrecord_config(folder, records, on_invalid="fail"):
    cfg = json.loads(json.dumps(SMALL_MODEL_CONFIG))
    spec = {"format": "tfrecord", "annotations": records}
    cfg["data"] = {"train": spec, "val": spec, "on_invalid": on_invalid}
    cfg["train"] = {"steps": 1, "epochs": 0, "batch_size": 1,
                    "lr_schedule": {"type": "cosine", "warmup_steps": 0, "milestones": []}}
    (folder / "records.json").write_text(json.dumps(cfg))
    return "records.json"


def read_records(folder, tool, config, weights):
    if tool == "mrcnn-train":
        return run_tool(folder, tool, "--config", config, "--output-dir", "run", "--device", "cpu",
                        address_space=MEMORY_LIMIT)
    return run_tool(folder, tool, "--config", config, "-w", weights, "--dataset", "train", "-o", "dt.json",
                    address_space=MEMORY_LIMIT)


TOOLS = ["mrcnn-infer", "mrcnn-train"]
OVERFLOW = 2**62 + 1  # x 4 wraps to 4 in 64 bits


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("content,message", [
    (framed(b"", length=2**32)[:12] + b"\0" * 4,
     "bad.record: record at byte 0 is truncated (its length header claims 4294967296 data bytes, 4 bytes are left"),
    (framed(b"\0" * 100)[:60], "bad.record: record at byte 0 is truncated (its length header claims 100 data bytes"),
    (framed(b"\x0a\x00")[:-1] + b"\0", "bad.record: record at byte 0: data CRC mismatch"),
    (b"\0" * 11, "bad.record: record at byte 0 is truncated (incomplete length header)"),
    (framed(field(1, field(1, b"\x0a\xff\x01abc"))), "not a tf.train.Example (length past the end of the message"),
    (framed(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), "not a tf.train.Example (varint longer than 10"),
    (framed(detection_example(OVERFLOW, 4, [1.0] * 4)),
     "image/height x image/width (4611686018427387905 x 4) is more than the limit of"),
    (framed(detection_example(2**31, 2**31, [b"x"])), "image/height x image/width (2147483648 x 2147483648)"),
    (framed(detection_example(64, 64, [png(np.zeros((8, 8), np.uint8))])), "instance mask 0 is not a 64x64 PNG"),
], ids=["claims_4GB", "truncated", "bad_crc", "short_header", "length_past_end", "long_varint", "overflow",
        "too_many_pixels", "mask_size"])
def test_hostile_records(tmp_path, small_model, tool, content, message):
    """mrcnn-train stops at the record (data.on_invalid: fail); mrcnn-infer --dataset skips it,
    logging why, and then has no images."""
    (tmp_path / "bad.record").write_bytes(content)
    result = read_records(tmp_path, tool, tfrecord_config(tmp_path, "bad.record"), small_model[0])
    if tool == "mrcnn-train":
        assert_refused(result, tool, "bad.record", message)
    else:
        assert_refused(result, tool, "bad.record: the data set has no usable images")
        assert message in result.stderr


def test_fifo_as_records(tmp_path, small_model):
    os.mkfifo(tmp_path / "fifo.record")
    result = read_records(tmp_path, "mrcnn-train", tfrecord_config(tmp_path, "fifo.record"), small_model[0])
    assert_refused(result, "mrcnn-train", "fifo.record: cannot read: it is a named pipe")


def test_eval_skips_overflowing_records(tmp_path, small_model):
    """mrcnn-eval --config reads the val set with the skip policy: the hostile record is skipped
    (named in the log), not read past its buffer."""
    good = detection_example(8, 8, [png(np.pad(np.ones((4, 4), np.uint8) * 255, 2))])
    (tmp_path / "val.record").write_bytes(framed(detection_example(OVERFLOW, 4, [1.0] * 4)) + framed(good))
    config = tfrecord_config(tmp_path, "val.record", on_invalid="skip")
    result = run_tool(tmp_path, "mrcnn-eval", "--config", config, "-w", small_model[0], "--json", "m.json",
                      address_space=MEMORY_LIMIT)
    assert "Segmentation" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert "image/height x image/width (4611686018427387905 x 4)" in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr


def test_memory_limit_allows_a_normal_run(tmp_path, infer_weights, small_model):
    """The address-space limit above is far from what a normal run needs: the hostile files fail
    by the checks, not by hitting the limit."""
    result = infer_weights(small_model[0])
    assert result.returncode == 0, result.stderr


def test_the_pixel_limit_reaches_tfrecord_sets(tmp_path, small_model):
    """--max-image-pixels (mrcnn-infer) and data.max_image_pixels (mrcnn-train) apply to the
    records' images too: a limit below 8x8 refuses a set that reads by default."""
    good = detection_example(8, 8, [png(np.pad(np.ones((4, 4), np.uint8) * 255, 2))])
    (tmp_path / "small.record").write_bytes(framed(good))
    config = tfrecord_config(tmp_path, "small.record")
    weights = small_model[0]
    ok = run_tool(tmp_path, "mrcnn-infer", "--config", config, "-w", weights, "--dataset", "train", "-o", "dt.json",
                  address_space=MEMORY_LIMIT)
    assert ok.returncode == 0, ok.stderr
    limited = run_tool(tmp_path, "mrcnn-infer", "--config", config, "-w", weights, "--dataset", "train",
                       "-o", "dt2.json", "--max-image-pixels", "63", address_space=MEMORY_LIMIT)
    assert_refused(limited, "mrcnn-infer", "small.record: the data set has no usable images")
    assert "is more than the limit of 63" in limited.stderr, limited.stderr
    cfg = json.loads((tmp_path / config).read_text())
    cfg["data"]["max_image_pixels"] = 63
    (tmp_path / "limited.json").write_text(json.dumps(cfg))
    trained = run_tool(tmp_path, "mrcnn-train", "--config", "limited.json", "--output-dir", "run", "--device", "cpu",
                       address_space=MEMORY_LIMIT)
    assert_refused(trained, "mrcnn-train", "small.record", "is more than the limit of 63")
