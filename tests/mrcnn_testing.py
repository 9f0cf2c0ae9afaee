"""Helpers shared by the Python tests (CLI and reference): where the built programs are, running
them, and making weights, images and safetensors files for them."""
import json
import os
import re
import resource
import struct
import subprocess
from pathlib import Path

# Absolute: Runner starts the tools from another working directory, so a relative
# MRCNN_BIN_DIR=build/tools must be resolved against the directory pytest was started in.
SOURCE_DIR = Path(os.environ.get("MRCNN_SOURCE_DIR", Path(__file__).resolve().parents[1])).resolve()
BIN_DIR = Path(os.environ.get("MRCNN_BIN_DIR", SOURCE_DIR / "build" / "tools")).resolve()
TEST_BIN_DIR = Path(os.environ.get("MRCNN_TEST_BIN_DIR", SOURCE_DIR / "build" / "tests")).resolve()
PENNFUDAN = SOURCE_DIR.parent / "shared" / "data" / "pennfudan"
WARNING_LINE = re.compile(r"\[\d\d:\d\d:\d\d warning\] ")  # the tools' log format (lib/core/log.cpp)
LOG_LINE = re.compile(r"\[\d\d:\d\d:\d\d (?:warning|info)\] ")  # may quote an error, is not one
# Text that means a crash or a library's own message reached the user instead of the one error line.
FOREIGN_TEXT = ("internal error", "terminate called", "Traceback", "Segmentation", "json.exception")
TOOLS = ["mrcnn-config", "mrcnn-train", "mrcnn-infer", "mrcnn-eval", "mrcnn-visualize"]


class Runner:
    """Runs a built tool in a folder and checks the one error path on exit 2."""

    def __init__(self, cwd: Path):
        self.cwd = cwd

    def __call__(self, tool, *args, check_clean_error=True, timeout=600):
        exe = BIN_DIR / tool
        assert exe.exists(), f"{exe} is not built"
        result = subprocess.run([str(exe), *map(str, args)], cwd=self.cwd, capture_output=True, text=True,
                                timeout=timeout)
        if check_clean_error and result.returncode == 2:
            # A logged warning may quote why it skipped something ("syntax error while parsing"); it
            # is not an error line.
            errors = [l for l in result.stderr.splitlines() if "error" in l.lower() and not WARNING_LINE.match(l)]
            assert errors, f"exit 2 without an error line: {result.stderr!r}"
            for line in errors:
                assert line.startswith(f"{tool}: error: "), line
            assert "terminate called" not in result.stderr and "Traceback" not in result.stderr
        return result


def run_tool(cwd, tool, *args, timeout=30, address_space=None, env=None):
    """Runs a built tool in cwd and returns the CompletedProcess; the timeout makes a hang fail, and
    address_space (bytes, RLIMIT_AS) bounds what a hostile input can make it allocate. env: variables
    set for it on top of this process's environment (TMPDIR)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    # BIN_DIR is absolute, so the tool is found from any cwd.
    return subprocess.run([str(BIN_DIR / tool), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit if address_space else None,
                          env={**os.environ, **env} if env else None)


def assert_one_error(result, tool, *fragments):
    """Exit 2 with exactly one error line (log lines aside), "<tool>: error: ...", shorter than 1000
    characters and holding every fragment, and no crash or library text on stderr. Returns the line."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    errors = [l for l in result.stderr.splitlines() if "error" in l.lower() and not LOG_LINE.match(l)]
    assert len(errors) == 1 and errors[0].startswith(f"{tool}: error: "), result.stderr[-2000:]
    for bad in FOREIGN_TEXT:
        assert bad not in result.stderr, result.stderr[-2000:]
    assert len(errors[0]) < 1000, errors[0][:500]
    for fragment in fragments:
        assert str(fragment) in errors[0], errors[0]
    return errors[0]


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of bytes, continuing from `crc` (as TF's crc32c::Extend)."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    """The masked CRC-32C that TFRecords and TF checkpoints store."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


TFOD_DIR = Path(os.environ.get("MRCNN_TFOD_DIR", SOURCE_DIR / ".tfod")).resolve()  # git-ignored
TFOD_SETUP = SOURCE_DIR.parent / "shared" / "tfod-reference" / "setup.sh"


def tensorflow_python():
    """The Python of a venv with tensorflow-cpu (and the TF OD API: ../shared/tfod-reference), set
    up once into TFOD_DIR (about 70 s, 1.8 GB) and reused. Skips the calling test, saying why, only
    when PyPI is unreachable; any other setup failure fails it."""
    import fcntl

    import pytest

    python, ready = TFOD_DIR / "venv" / "bin" / "python", TFOD_DIR / ".ready"
    TFOD_DIR.mkdir(parents=True, exist_ok=True)
    with open(TFOD_DIR / ".setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one setup at a time (tests in parallel wait for it)
        if ready.exists():
            return python
        assert TFOD_SETUP.exists(), f"{TFOD_SETUP} is missing (the TF OD API reference kit)"
        setup = subprocess.run(["bash", str(TFOD_SETUP), str(TFOD_DIR)], capture_output=True, text=True, timeout=1800)
        if setup.returncode != 0:
            probe = subprocess.run(["python3", "-m", "pip", "download", "--no-deps", "-q", "-d", str(TFOD_DIR / "probe"),
                                    "tf-slim==1.1.0"], capture_output=True, text=True, timeout=120)
            if probe.returncode != 0:
                pytest.skip(f"PyPI unreachable, no tensorflow-cpu to compare with: {probe.stderr.strip()[-300:]}")
            raise AssertionError(f"{TFOD_SETUP} failed: {setup.stderr[-3000:]}")
        ready.write_text(setup.stdout)
    return python


# The reference model the TF tests share (tfod_reference_model): reference.py's overrides.
TFOD_MODEL_SIZE, TFOD_MODEL_CLASSES, TFOD_MODEL_PROPOSALS = 320, 3, 64


def tfod_reference_model():
    """The TF OD API reference's (../shared/tfod-reference) Mask R-CNN Inception-ResNet-v2 of
    IRV2_CONFIG at a 320 px fixed resizer, 3 classes and 64 proposals, seeded (0), perturbed and
    calibrated on sample_images' first photo: the TF tests' common weights. Returns its folder,
    which holds irv2.config, img0.png (the photo), ckpt/ (the TF2 checkpoint, ckpt/ckpt-1) and
    reference.npz (reference.py's dump of that run, oneDNN on). Made once per build folder
    (about 2 minutes on 2 cores; ctest makes it before the tests that use it, a fixture); a key
    of everything it comes from (reference.py, the config, the arguments, the photo, the TF
    set-up) tells whether the folder there is current (folder_made_once)."""
    from cli.test_tf_checkpoint import IRV2_CONFIG

    python = tensorflow_python()
    reference = TFOD_SETUP.with_name("reference.py")
    args = ["--config", "irv2.config", "--image", "img0.png", "--size", TFOD_MODEL_SIZE, "--num_classes",
            TFOD_MODEL_CLASSES, "--max_proposals", TFOD_MODEL_PROPOSALS, "--seed", 0, "--runs", 1, "--list_vars", 0,
            "--perturb", "--ckpt_dir", "ckpt", "--dump", "reference.npz"]

    def sources(staging):
        [image] = sample_images(staging, 1)
        return [reference.read_bytes(), IRV2_CONFIG.encode(), " ".join(map(str, args)).encode(), image.read_bytes(),
                (TFOD_DIR / ".ready").read_bytes()]

    def make(staging):
        (staging / "irv2.config").write_text(IRV2_CONFIG)
        made = subprocess.run([str(python), str(reference), *map(str, args)], cwd=staging, capture_output=True, text=True,
                              timeout=900, env={**os.environ, "TFOD_SRC": str(TFOD_DIR / "src")})
        assert made.returncode == 0, made.stderr[-3000:]

    return folder_made_once("tfod_reference_model", sources, make)


def folder_made_once(name, sources, make):
    """TEST_BIN_DIR/<name>, made once per build folder for the tests that share it, under a file
    lock (one maker; the other tests wait for it). sources(staging) writes the inputs into an empty
    staging folder and returns the bytes of everything the result comes from: when the folder
    there holds their key (sha256), it is current; else make(staging) completes the staging
    folder, which then replaces it whole."""
    import fcntl
    import hashlib
    import shutil

    folder, staging = TEST_BIN_DIR / name, TEST_BIN_DIR / f"{name}.tmp"
    with open(TEST_BIN_DIR / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        key = hashlib.sha256(b"\0".join(sources(staging))).hexdigest()
        if (folder / "key").exists() and (folder / "key").read_text() == key:
            shutil.rmtree(staging)
            return folder
        make(staging)
        (staging / "key").write_text(key)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)  # whole or not at all
    return folder


# The hidden-band shapes set and its 4-band model (test_bands_hidden_class, test_precision).
HIDDEN_BAND_STEPS = int(os.environ.get("MRCNN_HIDDEN_BAND_STEPS", "200"))
HIDDEN_BAND_SET = ["--make-shapes", "hs", "--hidden-band", "--shapes-train", "200", "--shapes-val", "120",
                   "--shapes-size", "64"]


def write_hidden_band_configs(workdir):
    """four.json (4 bands) and rgb.json (bands 0-2 of the same files) in workdir: the tiny preset at
    64 px, 5 classes, HIDDEN_BAND_STEPS steps on the hidden-band set hs/, otherwise the same but
    that four.json validates on hs/val once, after its last step (which leaves the weights as they
    are; its log then says what infer.precision auto chose, which test_precision checks)."""
    cfg = json.loads((SOURCE_DIR / "configs" / "shapes_tiny_cpu.json").read_text())
    cfg["model"].update({"min_size": [64], "max_size": 64, "num_classes": 5})
    cfg["data"]["train"] = {"format": "coco", "images": "hs/train", "annotations": "hs/train.json"}
    cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
    cfg["train"].update({"steps": HIDDEN_BAND_STEPS, "checkpoint_period": 100000, "eval_period": 100000,
                         "log_period": 50})
    four = json.loads(json.dumps(cfg))
    four["model"].update({"input_channels": 4, "image_mean": [0.485, 0.456, 0.406, 0.3],
                          "image_std": [0.229, 0.224, 0.225, 0.2]})
    four["data"]["val"] = {"format": "coco", "images": "hs/val", "annotations": "hs/val.json"}
    cfg["data"]["train"]["bands"] = [0, 1, 2]
    (Path(workdir) / "four.json").write_text(json.dumps(four))
    (Path(workdir) / "rgb.json").write_text(json.dumps(cfg))


def four_band_model():
    """The tiny preset trained with 4 bands on the hidden-band shapes set (write_hidden_band_configs'
    four.json), shared by test_bands_hidden_class (which trains rgb.json beside it) and
    test_precision (which scores it in fp32 and bf16): one training for both. Returns its folder:
    hs/ (200 training, 120 validation images), four.json, rgb.json, run_four/ (the run) and
    train.log (its stderr). Made once per build folder (ctest makes it before both tests, a
    fixture); a key of everything it comes from (the mrcnn-train executable, which holds the
    library, torch's version, the configs, the CPU and the ISA caps in the environment) tells
    whether the folder there is current (folder_made_once)."""
    import importlib.metadata

    def sources(staging):
        write_hidden_band_configs(staging)
        cpu = [line for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith(("model name", "flags"))][:2]
        caps = [f"{k}={os.environ.get(k, '')}" for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                                                          "MKL_ENABLE_INSTRUCTIONS")]
        return [(BIN_DIR / "mrcnn-train").read_bytes(), importlib.metadata.version("torch").encode(),
                (staging / "four.json").read_bytes(), (staging / "rgb.json").read_bytes(),
                " ".join(HIDDEN_BAND_SET).encode(), "\n".join(cpu + caps).encode()]

    def make(staging):
        run = Runner(staging)
        made = run("mrcnn-train", *HIDDEN_BAND_SET)
        assert made.returncode == 0, made.stderr
        # 60-70 s on 2 idle AVX-512 cores; over 600 s on the same cores capped at AVX2 beside four
        # compilers, hence the wide limit: a slow machine is not a failure.
        made = run("mrcnn-train", "--config", "four.json", "--output-dir", "run_four", timeout=1800)
        assert made.returncode == 0, made.stderr[-2000:]
        (staging / "train.log").write_text(made.stderr)

    return folder_made_once("four_band_model", sources, make)


def write_safetensors(path, tensors, metadata=None):
    """A minimal safetensors writer (a JSON header plus raw little-endian bytes), so that the tests
    need no extra package."""
    import torch

    names = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.uint8: "U8", torch.float64: "F64"}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """{name: numpy array} of a safetensors file (F32/F64/I64/U8), without the safetensors package."""
    import numpy as np

    raw = Path(path).read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    types = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        out[name] = np.frombuffer(raw[8 + size + begin:8 + size + end], dtype=types[entry["dtype"]]).reshape(
            entry["shape"])
    return out


def read_safetensors_metadata(path):
    """The __metadata__ map of a safetensors file (step, config, label map of a model file)."""
    raw = Path(path).read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + size]).get("__metadata__", {})


def write_tiny_shapes_config(workdir, train, train_set_extra=None):
    """workdir/tiny.json: the tiny shapes preset at 64 pixels on the shapes/ set (train and val), with
    `train` merged into its train section; returns the file name. The training tests' common model."""
    cfg = json.loads((SOURCE_DIR / "configs" / "shapes_tiny_cpu.json").read_text())
    cfg["model"]["min_size"] = [64]
    cfg["model"]["max_size"] = 64
    cfg["data"]["train"] = {"format": "coco", "images": "shapes/train", "annotations": "shapes/train.json",
                            **(train_set_extra or {})}
    cfg["data"]["val"] = {"format": "coco", "images": "shapes/val", "annotations": "shapes/val.json"}
    cfg["train"].update(train)
    (Path(workdir) / "tiny.json").write_text(json.dumps(cfg))
    return "tiny.json"


def png_bytes(array):
    """A numpy image array as PNG file bytes."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_mask_pngs(folder, images):
    """images: [(height, width, [(x1, y1, x2, y2)])] as a mask_png set in folder/png_images and
    folder/png_masks: one box per image (instance masks cannot overlap), black pixels."""
    import numpy as np

    (folder / "png_images").mkdir()
    (folder / "png_masks").mkdir()
    for i, (h, w, [(x1, y1, x2, y2)]) in enumerate(images, 1):
        (folder / "png_images" / f"{i}.png").write_bytes(png_bytes(np.zeros((h, w, 3), np.uint8)))
        mask = np.zeros((h, w), np.uint8)
        mask[y1:y2, x1:x2] = 1
        (folder / "png_masks" / f"{i}.png").write_bytes(png_bytes(mask))


def write_records(path, images):
    """images: [(height, width, [(x1, y1, x2, y2), ...])] as TF OD API records (normalised
    coordinates, PNG masks, class 1), written with the tfrecord package."""
    import numpy as np
    from tfrecord.writer import TFRecordWriter

    writer = TFRecordWriter(str(path))
    for i, (h, w, boxes) in enumerate(images, 1):
        masks = []
        for x1, y1, x2, y2 in boxes:
            mask = np.zeros((h, w), np.uint8)
            mask[y1:y2, x1:x2] = 255
            masks.append(png_bytes(mask))
        writer.write({"image/height": (h, "int"), "image/width": (w, "int"),
                      "image/filename": (f"{i}.png".encode(), "byte"),
                      "image/encoded": (png_bytes(np.zeros((h, w, 3), np.uint8)), "byte"),
                      "image/format": (b"png", "byte"),
                      "image/object/bbox/xmin": ([b[0] / w for b in boxes], "float"),
                      "image/object/bbox/ymin": ([b[1] / h for b in boxes], "float"),
                      "image/object/bbox/xmax": ([b[2] / w for b in boxes], "float"),
                      "image/object/bbox/ymax": ([b[3] / h for b in boxes], "float"),
                      "image/object/class/label": ([1] * len(boxes), "int"),
                      "image/object/mask": (masks, "byte")})
    writer.close()


def spread_head_outputs(model):
    """Random init leaves objectness and class scores nearly tied; spread them (and keep box
    regressions small, as in a trained model) so that comparisons are not decided by rounding."""
    import torch

    with torch.no_grad():
        for layer, std in ((model.rpn.head.cls_logits, 0.1), (model.rpn.head.bbox_pred, 0.001),
                           (model.roi_heads.box_predictor.cls_score, 0.05),
                           (model.roi_heads.box_predictor.bbox_pred, 0.005),
                           (model.roi_heads.mask_predictor.mask_fcn_logits, 0.05)):
            layer.weight.normal_(0, std)
            layer.bias.uniform_(-0.1, 0.1)
    return model


def randomize_batch_norms(model):
    """Non-trivial batch-norm statistics (random init leaves them at identity)."""
    import torch
    from torchvision.ops.misc import FrozenBatchNorm2d

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, FrozenBatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.2)
                m.bias.uniform_(-0.2, 0.2)
    return model


def make_resnet50_torchvision_model(num_classes):
    """torchvision's maskrcnn_resnet50_fpn with random weights (seed 0), random batch norms and spread
    head outputs: the torchvision-parity tests' full-size reference model."""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes).eval()
    return spread_head_outputs(randomize_batch_norms(model))


def parity_photos():
    """The two Penn-Fudan photos of the torchvision-parity tests (two sizes), or [] without the shared data."""
    files = sorted((PENNFUDAN / "PNGImages").glob("*.png"))
    return [files[0], files[37]] if files else []


def make_small_torchvision_model(num_classes=3, seed=0, fpn_channels=256):
    """torchvision's MaskRCNN with a ResNet-18 FPN backbone and random weights: a quick stand-in
    for trained weights. fpn_channels other than 256 builds the FPN by hand (the helper fixes 256);
    MaskRCNN sizes the RPN, box and mask heads from it."""
    import torch
    from torchvision.models import resnet18
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
    from torchvision.ops import misc
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    torch.manual_seed(seed)
    if fpn_channels == 256:
        backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5)
    else:
        body = resnet18(weights=None, norm_layer=misc.FrozenBatchNorm2d)
        backbone = BackboneWithFPN(body, {f"layer{k}": str(k - 1) for k in range(1, 5)}, [64, 128, 256, 512],
                                   fpn_channels, extra_blocks=LastLevelMaxPool())
    model = MaskRCNN(backbone, num_classes=num_classes, min_size=160, max_size=200).eval()
    return spread_head_outputs(model)


SMALL_MODEL_CONFIG = {"model": {"backbone": "resnet18", "num_classes": 3, "min_size": [160], "max_size": 200},
                      "infer": {"score_threshold": 0.05, "device": "cpu"}}


def sample_images(folder, count=3):
    """Real photos (Penn-Fudan) when the shared data is there, else synthetic ones."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    files = sorted((PENNFUDAN / "PNGImages").glob("*.png"))[:count]
    paths = []
    for i in range(count):
        target = folder / f"img{i}.png"
        if files:
            Image.open(files[i]).convert("RGB").save(target)
        else:
            rng = np.random.default_rng(i)
            Image.fromarray((rng.random((120 + 10 * i, 160, 3)) * 255).astype(np.uint8)).save(target)
        paths.append(target)
    return paths


def tiff_bytes(array):
    """An H x W (x C) uint8 or uint16 numpy array as an uncompressed little-endian TIFF (one strip,
    chunky samples; 3+ bands as RGB plus extra samples), which OpenCV reads with every band. Pillow
    writes neither 16-bit colour nor more than 4 bands."""
    import numpy as np

    a = np.ascontiguousarray(array if array.ndim == 3 else array[:, :, None])
    height, width, bands = a.shape
    bits = a.dtype.itemsize * 8
    data = a.astype(a.dtype.newbyteorder("<")).tobytes()
    extra = max(0, bands - (3 if bands >= 3 else 1))
    tail = struct.pack(f"<{bands}H", *[bits] * bands) + struct.pack(f"<{extra}H", *[0] * extra)
    bits_at, extra_at = 8 + len(data), 8 + len(data) + 2 * bands
    ifd_at = (extra_at + 2 * extra + 1) // 2 * 2

    def short_or_offset(count, value, offset):  # a SHORT array fits the entry up to 2 values
        return struct.pack("<HH", value, value if count == 2 else 0) if count <= 2 else struct.pack("<I", offset)

    entries = [(256, 4, 1, struct.pack("<I", width)), (257, 4, 1, struct.pack("<I", height)),
               (258, 3, bands, short_or_offset(bands, bits, bits_at)), (259, 3, 1, struct.pack("<HH", 1, 0)),
               (262, 3, 1, struct.pack("<HH", 2 if bands >= 3 else 1, 0)), (273, 4, 1, struct.pack("<I", 8)),
               (277, 3, 1, struct.pack("<HH", bands, 0)), (278, 4, 1, struct.pack("<I", height)),
               (279, 4, 1, struct.pack("<I", len(data))), (284, 3, 1, struct.pack("<HH", 1, 0))]
    if extra:
        entries.append((338, 3, extra, short_or_offset(extra, 0, extra_at)))
    out = b"II*\x00" + struct.pack("<I", ifd_at) + data + tail
    out += b"\x00" * (ifd_at - len(out)) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack("<HHI", tag, kind, count) + value
    return out + struct.pack("<I", 0)
