"""Our Mask R-CNN against torchvision's: same random weights (torchvision's state dict, loaded by
our weight importer), same images, CPU float32. Checks the FPN features, the RPN proposals, the
detections and the pasted masks, at two image sizes, for maskrcnn_resnet50_fpn and for a
ResNet-18 FPN MaskRCNN with frozen batch norm and small input sizes (with the standard 256-channel
FPN and with a 128-channel one, model.fpn_channels)."""
import json
import subprocess

import numpy as np
import pytest

from mrcnn_testing import (SMALL_MODEL_CONFIG, TEST_BIN_DIR, make_resnet50_torchvision_model,
                           make_small_torchvision_model, parity_photos, randomize_batch_norms, write_safetensors)

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torchvision.ops import box_iou  # noqa: E402

NUM_CLASSES = 3  # not COCO's 91, so that the predictors' shapes are exercised


def reference_model(kind):
    if kind == "resnet18":
        return randomize_batch_norms(make_small_torchvision_model(NUM_CLASSES)), SMALL_MODEL_CONFIG
    if kind == "resnet18-fpn128":  # model.fpn_channels: a narrower FPN, RPN head and ROI features
        config = json.loads(json.dumps(SMALL_MODEL_CONFIG))
        config["model"]["fpn_channels"] = 128
        return randomize_batch_norms(make_small_torchvision_model(NUM_CLASSES, fpn_channels=128)), config
    return make_resnet50_torchvision_model(NUM_CLASSES), {"model": {"num_classes": NUM_CLASSES}}


def load_images():
    picks = parity_photos()
    if picks:
        from PIL import Image
        arrays = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in picks]
    else:  # no shared data: smooth synthetic images of two sizes
        rng = np.random.default_rng(0)
        arrays = [rng.random((h, w, 3), dtype=np.float32) for h, w in ((375, 500), (512, 341))]
    images = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]
    assert images[0].shape != images[1].shape
    return images


@pytest.fixture(scope="module", params=["resnet50", "resnet18", "resnet18-fpn128"])
def outputs(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    model, config = reference_model(request.param)
    images = load_images()
    torch.save(model.state_dict(), tmp / "weights.pth")
    write_safetensors(tmp / "images.safetensors", {f"image{i}": im for i, im in enumerate(images)})
    (tmp / "config.json").write_text(json.dumps(config))

    with torch.no_grad():
        batch, _ = model.transform(images)
        feature_dict = model.backbone(batch.tensors)
        features = list(feature_dict.values())
        proposals, _ = model.rpn(batch, feature_dict)
        detections, _ = model.roi_heads(feature_dict, proposals, batch.image_sizes)
        detections = model.transform.postprocess(detections, batch.image_sizes, [im.shape[-2:] for im in images])
    ref = {"batch": batch.tensors, "features": features, "proposals": proposals, "detections": detections}

    subprocess.run([str(TEST_BIN_DIR / "model_dump"), tmp / "config.json", tmp / "weights.pth",
                    tmp / "images.safetensors", tmp / "ours.pt"], check=True, timeout=600)
    ours = torch.load(tmp / "ours.pt", weights_only=False)  # written by our own test helper
    ref["proposal_floor"] = proposal_floor(model, batch, feature_dict, proposals, ours)
    return ref, ours, len(images)


def unmatched_proposals(a, b, scale):
    """How many of a's proposals b lacks, and of b's a lacks (no partner within 1e-4 of the image scale)."""
    distance = torch.cdist(a, b, p=float("inf"))
    return int((distance.min(1).values > 1e-4 * scale).sum()), int((distance.min(0).values > 1e-4 * scale).sum())


def proposal_floor(model, batch, feature_dict, proposals, ours):
    """Per image, how many proposals torchvision's own RPN gains or loses when it runs on our FPN
    features instead of its own: those at a decision (the per-level top-k, NMS's IoU, the final
    top-k) that our features' rounding flips, measured exactly in this run."""
    ours_features = type(feature_dict)(
        (name, ours[f"features_{level}"]) for level, name in enumerate(feature_dict))
    with torch.no_grad():
        again, _ = model.rpn(batch, ours_features)
    return [max(unmatched_proposals(a, b, float(a.abs().max()))) for a, b in zip(proposals, again)]


def relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def test_input_batch(outputs):
    ref, ours, _ = outputs
    assert ours["batch"].shape == ref["batch"].shape
    assert relative_error(ours["batch"], ref["batch"]) < 1e-6


def test_fpn_features(outputs):
    ref, ours, _ = outputs
    for level, feature in enumerate(ref["features"]):
        assert ours[f"features_{level}"].shape == feature.shape, level
        assert relative_error(ours[f"features_{level}"], feature) < 1e-4, level


def test_rpn_proposals(outputs):
    """The same set of proposals, each within 1e-4 of the image scale. Order may differ where two
    objectness scores are closer than float rounding, so each proposal is matched to its nearest.
    Proposals at a decision may differ: no more than torchvision's own RPN flips when it runs on our
    features (proposal_floor), and that floor itself is a handful (1%)."""
    ref, ours, n = outputs
    for i in range(n):
        theirs, mine = ref["proposals"][i], ours[f"proposals_{i}"]
        assert mine.shape == theirs.shape
        floor = ref["proposal_floor"][i]
        assert floor <= 0.01 * len(theirs), f"image {i}: {floor} proposals flip under our features' error"
        missing, extra = unmatched_proposals(theirs, mine, float(theirs.abs().max()))
        assert missing <= floor and extra <= floor, f"image {i}: {missing} missing, {extra} extra, floor {floor}"


def match(ref_boxes, our_boxes):
    """For each reference box, the index of our box with the highest IoU, and that IoU."""
    if len(ref_boxes) == 0 or len(our_boxes) == 0:
        return torch.zeros(len(ref_boxes), dtype=torch.long), torch.zeros(len(ref_boxes))
    iou = box_iou(ref_boxes, our_boxes)
    best, index = iou.max(1)
    return index, best


@pytest.mark.parametrize("direction", ["torchvision->ours", "ours->torchvision"])
def test_detections_match(outputs, direction):
    ref, ours, n = outputs
    total = 0
    for i in range(n):
        a = {k: ref["detections"][i][k] for k in ("boxes", "scores", "labels")}
        b = {"boxes": ours[f"boxes_{i}"], "scores": ours[f"scores_{i}"], "labels": ours[f"labels_{i}"]}
        if direction == "ours->torchvision":
            a, b = b, a
        keep = a["scores"] >= 0.05
        total += int(keep.sum())
        for box, score, label in zip(a["boxes"][keep], a["scores"][keep], a["labels"][keep]):
            same_class = b["labels"] == label
            candidates = b["boxes"][same_class]
            assert len(candidates) > 0, f"image {i}: no partner of class {label}"
            iou = box_iou(box[None], candidates)[0]
            j = int(iou.argmax())
            assert float(iou[j]) >= 0.99, f"image {i}: best IoU {float(iou[j])}"
            assert abs(float(b["scores"][same_class][j]) - float(score)) <= 1e-3
    assert total > 0, "the reference made no detections: the test would not test anything"


def test_masks_match(outputs):
    ref, ours, n = outputs
    for i in range(n):
        ref_masks = ref["detections"][i]["masks"] > 0.5
        our_masks = ours[f"masks_{i}"] > 0.5
        assert our_masks.shape[1:] == ref_masks.shape[1:]
        index, _ = match(ref["detections"][i]["boxes"], ours[f"boxes_{i}"])
        for k in range(len(ref_masks)):
            a, b = ref_masks[k, 0], our_masks[index[k], 0]
            union = (a | b).sum()
            if union == 0:
                continue
            assert float((a & b).sum() / union) >= 0.98, f"image {i} mask {k}"
