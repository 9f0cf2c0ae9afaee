"""The loss terms of one training step against torchvision's loss dict: same weights, same
images and targets (real Penn-Fudan masks), and the same samples (both sides take the first
positives and negatives in index order instead of random ones). BCE weight 1 and Dice weight 0
is torchvision's mask loss; with Dice on, the mask term grows by the Dice loss."""
import json
import subprocess

import numpy as np
import pytest

from mrcnn_testing import PENNFUDAN, SMALL_MODEL_CONFIG, TEST_BIN_DIR, make_small_torchvision_model, write_safetensors

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")


class FirstSamples:
    """torchvision's BalancedPositiveNegativeSampler without the randomness."""

    def __init__(self, batch_size_per_image, positive_fraction):
        self.batch, self.fraction = batch_size_per_image, positive_fraction

    def __call__(self, matched_idxs):
        pos_masks, neg_masks = [], []
        for labels in matched_idxs:
            positive = torch.where(labels >= 1)[0]
            negative = torch.where(labels == 0)[0]
            num_pos = min(positive.numel(), int(self.batch * self.fraction))
            num_neg = min(negative.numel(), self.batch - num_pos)
            p = torch.zeros_like(labels, dtype=torch.uint8)
            n = torch.zeros_like(labels, dtype=torch.uint8)
            p[positive[:num_pos]] = 1
            n[negative[:num_neg]] = 1
            pos_masks.append(p)
            neg_masks.append(n)
        return pos_masks, neg_masks


def sample_data():
    from PIL import Image
    images, targets = [], []
    names = ["FudanPed00001", "FudanPed00011"]
    for name in names:
        image_path = PENNFUDAN / "PNGImages" / f"{name}.png"
        if image_path.exists():
            image = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32) / 255
            ids = np.asarray(Image.open(PENNFUDAN / "PedMasks" / f"{name}_mask.png"))
        else:  # synthetic stand-in
            rng = np.random.default_rng(len(images))
            image = rng.random((180, 240, 3), dtype=np.float32)
            ids = np.zeros((180, 240), np.uint8)
            ids[20:120, 30:90] = 1
            ids[50:170, 140:200] = 2
        masks = np.stack([(ids == k).astype(np.uint8) for k in np.unique(ids) if k != 0])
        boxes = []
        for m in masks:
            ys, xs = np.where(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        images.append(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                        "labels": torch.tensor([1 + (k % 2) for k in range(len(masks))], dtype=torch.int64),
                        "masks": torch.from_numpy(masks)})
    return images, targets


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("losses")
    model = make_small_torchvision_model()
    torch.save(model.state_dict(), tmp / "weights.pth")
    images, targets = sample_data()
    data = {}
    for i, (im, t) in enumerate(zip(images, targets)):
        data[f"image{i}"] = im
        data[f"boxes{i}"] = t["boxes"]
        data[f"labels{i}"] = t["labels"]
        data[f"masks{i}"] = t["masks"]
    write_safetensors(tmp / "data.safetensors", data)
    model.train()
    model.rpn.fg_bg_sampler = FirstSamples(256, 0.5)
    model.roi_heads.fg_bg_sampler = FirstSamples(512, 0.25)
    reference = {k: float(v) for k, v in model(images, targets).items()}
    return tmp, reference


def run_ours(tmp, config):
    (tmp / "config.json").write_text(json.dumps(config))
    subprocess.run([str(TEST_BIN_DIR / "loss_dump"), tmp / "config.json", tmp / "weights.pth",
                    tmp / "data.safetensors", tmp / "ours.json"], check=True)
    return json.loads((tmp / "ours.json").read_text())


def torchvision_config(dice_weight):
    config = json.loads(json.dumps(SMALL_MODEL_CONFIG))
    config["model"]["mask"] = {"bce_weight": 1.0, "dice_weight": dice_weight}
    return config


def test_loss_terms_match_torchvision(setup):
    tmp, reference = setup
    ours = run_ours(tmp, torchvision_config(0.0))
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    assert reference["loss_mask"] > 0 and reference["loss_box_reg"] > 0
    for key, norm in ours.items():
        if key.startswith("grad_norm:"):
            assert norm > 0, key


def test_dice_adds_to_the_mask_loss(setup):
    tmp, reference = setup
    ours = run_ours(tmp, torchvision_config(1.0))
    assert ours["loss_mask"] > reference["loss_mask"] + 1e-3
    assert ours["loss_classifier"] == pytest.approx(reference["loss_classifier"], rel=1e-4)
