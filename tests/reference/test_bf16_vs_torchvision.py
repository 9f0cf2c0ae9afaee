"""What bf16 costs against torchvision (issue 24): mrcnn-infer --precision bf16 on the parity tests'
ResNet-50 FPN model (random weights, random batch norms, spread head outputs) and photos, against
torchvision in float32 on the same decoded pixels: each of torchvision's detections against our
best box of its class, bf16 held on the whole set's figures. The same comparison in fp32 must meet
test_model_parity's strict per-detection bounds, and the message shows both, so that it says how
much of the difference is bf16's.
Runs bf16 on every CPU: emulated (slowly) where there are no bf16 units, so the claim is checked
everywhere."""
import json
import shutil

import numpy as np
import pytest

from mrcnn_testing import Runner, make_resnet50_torchvision_model, parity_photos

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
mask_api = pytest.importorskip("pycocotools.mask")
from PIL import Image  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402

# pycocotools' decode under numpy 2 warns once per call; the warning says nothing about this test.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

NUM_CLASSES = 3
# torchvision's detections compared: well above --score-threshold 0.05 (the random model's 100 per
# image score 0.78 to 0.97, so in practice all of them: which 100 survive is part of what is compared).
CLEAR_SCORE = 0.3
FP32 = {"box_iou": 0.99, "score": 1e-3, "mask_iou": 0.98}  # test_model_parity's bounds, per detection
# ...which all but test_model_parity's end-to-end budget of near-tie flips meet: fp32 rounding (our
# Winograd convolutions') may flip a near-tied proposal or the top-100 cut, and the flipped detection
# has no partner (measured 2026-12-01 on an Intel Xeon: 1 of 200 with AVX-512, 0 under AVX2 caps).
FP32_FLIP_BUDGET = 0.02
# bf16 is not held per detection: on this random-weights model bf16 rounding reorders the near-tied
# proposals, so a few detections of torchvision's 100 have no counterpart at all; torchvision's own
# bf16 autocast does the same (found 0.885, median box IoU 0.755, median score difference 0.0059,
# mean mask IoU 0.882, measured natively). So the bounds are on the whole set, each at least 2x the
# worst measured shortfall (2026-12-01, AMD EPYC with avx512_bf16, the 2 parity photos, 200
# detections; native bf16 / emulated under ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2):
#   found (share with a same-class box at IoU >= 0.5)  0.910 / 0.895  -> bound >= 0.75
#   median box IoU with the best same-class partner   0.779 / 0.791  -> bound >= 0.5
#   median score difference to that partner           0.0054 / 0.0059 -> bound <= 0.015
#   mean mask IoU with that partner                    0.870 / 0.870  -> bound >= 0.7
# (fp32, for comparison: 1.000, >= 0.998 per detection, <= 7e-6 per detection, 1.000.)
# The bounds can fail: 10x tighter, all four fail; bf16 with one layer3 convolution scaled by 1.1
# fails the score bound, by 1.5 also "found"; re-drawn mask logits fail the mask bound.
BF16 = {"found": 0.75, "median_box_iou": 0.5, "median_score": 0.015, "mean_mask_iou": 0.7}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The folder with weights.pth, config.json and the photos in images/, and torchvision's float32
    detections {file name: detections}."""
    workdir = tmp_path_factory.mktemp("bf16")
    model = make_resnet50_torchvision_model(NUM_CLASSES)
    torch.save(model.state_dict(), workdir / "weights.pth")
    (workdir / "config.json").write_text(json.dumps({"model": {"num_classes": NUM_CLASSES}}))
    names = write_images(workdir / "images")
    detections = {}
    with torch.inference_mode():
        for name in names:
            pixels = np.asarray(Image.open(workdir / "images" / name).convert("RGB"), dtype=np.float32) / 255.0
            detections[name] = model([torch.from_numpy(pixels).permute(2, 0, 1).contiguous()])[0]
    return workdir, detections


def write_images(folder):
    """The parity photos (two sizes) copied into folder, or without the shared data synthetic PNGs
    of the sizes test_model_parity uses; returns their file names."""
    folder.mkdir()
    photos = parity_photos()
    if photos:
        for i, photo in enumerate(photos):
            shutil.copyfile(photo, folder / f"img{i}.png")
    else:
        rng = np.random.default_rng(0)
        for i, (h, w) in enumerate(((375, 500), (512, 341))):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return sorted(p.name for p in folder.iterdir())


def run_ours(workdir, precision):
    """mrcnn-infer's detections over the images with --precision as given: the output file's bytes and
    {file name: [records]}."""
    output = workdir / f"dt_{precision}.json"
    result = Runner(workdir)("mrcnn-infer", "--config", "config.json", "--weights", "weights.pth", "-i", "images",
                             "-o", output.name, "--precision", precision, "--threads", "2",
                             "--score-threshold", "0.05", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    records = {}
    for record in json.loads(output.read_text()):
        records.setdefault(record["file_name"].split("/")[-1], []).append(record)
    return output.read_bytes(), records


def partners(reference, ours):
    """For each torchvision detection scoring at least CLEAR_SCORE, and our best box of its class (the
    highest IoU): (box IoU, score difference, mask IoU); (0, 1, 0) when we found none of its class."""
    rows = []
    for name, theirs in reference.items():
        records = ours.get(name, [])
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in records)]).reshape(-1, 4)
        labels = torch.tensor([r["category_id"] for r in records], dtype=torch.long)
        for k in torch.nonzero(theirs["scores"] >= CLEAR_SCORE).flatten().tolist():
            same_class = torch.nonzero(labels == theirs["labels"][k]).flatten()
            if len(same_class) == 0:
                rows.append((0.0, 1.0, 0.0))
                continue
            iou = box_iou(theirs["boxes"][k][None], boxes[same_class])[0]
            partner = records[int(same_class[int(iou.argmax())])]
            rows.append((float(iou.max()), abs(partner["score"] - float(theirs["scores"][k])),
                         mask_iou(theirs["masks"][k, 0] > 0.5, partner["segmentation"])))
    return np.array(rows).reshape(-1, 3)


def mask_iou(their_mask, rle):
    """IoU of a boolean mask and our compressed RLE (1 where both are empty)."""
    ours = torch.from_numpy(mask_api.decode(rle).astype(bool))
    union = int((their_mask | ours).sum())
    return float((their_mask & ours).sum()) / union if union else 1.0


def summary(rows):
    """The per-detection extremes (fp32's bounds) and the set's figures (bf16's bounds) of partners()."""
    box, score, mask = rows[:, 0], rows[:, 1], rows[:, 2]
    return {"compared": len(rows), "box_iou": box.min(), "score": score.max(), "mask_iou": mask.min(),
            "found": float((box >= 0.5).mean()), "median_box_iou": float(np.median(box)),
            "median_score": float(np.median(score)), "mean_mask_iou": float(mask.mean())}


def describe(figures):
    return (f"{figures['compared']} detections: found {figures['found']:.3f}, box IoU median "
            f"{figures['median_box_iou']:.3f} / worst {figures['box_iou']:.4f}, score difference median "
            f"{figures['median_score']:.2e} / worst {figures['score']:.2e}, mask IoU mean "
            f"{figures['mean_mask_iou']:.3f} / worst {figures['mask_iou']:.4f}")


def violations(figures, bounds):
    """The bounds that figures break, as text (empty when it meets them all); each bound is a floor,
    except those on score differences, which are ceilings."""
    return [f"{key} {figures[key]:.4g} {'>' if 'score' in key else '<'} {bound}" for key, bound in bounds.items()
            if (figures[key] > bound if "score" in key else figures[key] < bound)]


@pytest.fixture(scope="module")
def fp32(reference):
    workdir, detections = reference
    raw, records = run_ours(workdir, "fp32")
    rows = partners(detections, records)
    return raw, summary(rows), rows


def test_fp32_meets_the_parity_bounds(fp32):
    _, figures, rows = fp32
    assert figures["compared"] >= 3, f"too few clear detections to compare: {describe(figures)}"
    outside = (rows[:, 0] < FP32["box_iou"]) | (rows[:, 1] > FP32["score"]) | (rows[:, 2] < FP32["mask_iou"])
    assert outside.sum() <= FP32_FLIP_BUDGET * len(rows), \
        f"fp32 against torchvision: {int(outside.sum())} detections outside {FP32}; {describe(figures)}"


def test_bf16_within_the_stated_tolerance(reference, fp32):
    workdir, detections = reference
    raw, records = run_ours(workdir, "bf16")
    figures = summary(partners(detections, records))
    fp32_raw, fp32_figures, _ = fp32
    message = f"bf16: {describe(figures)}; fp32 for comparison: {describe(fp32_figures)}"
    print(message)
    assert raw != fp32_raw, "bf16's detections are fp32's bit for bit: bf16 did not run"
    assert not violations(figures, BF16), f"{violations(figures, BF16)}; {message}"
