"""The COCO preset holds exactly the values of torchvision's maskrcnn_resnet50_fpn, read from a
torchvision model built in this test (the independent reference), not from our own tables."""
import inspect
import json
import subprocess

import pytest

from mrcnn_testing import BIN_DIR, SOURCE_DIR

torchvision = pytest.importorskip("torchvision")
from torchvision.models.detection import mask_rcnn  # noqa: E402


@pytest.fixture(scope="module")
def ours():
    preset = SOURCE_DIR / "configs" / "maskrcnn_resnet50_fpn_coco.json"
    out = subprocess.run([str(BIN_DIR / "mrcnn-config"), "show", str(preset)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)["model"]


@pytest.fixture(scope="module")
def reference():
    return mask_rcnn.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()


def test_transform(ours, reference):
    t = reference.transform
    assert ours["min_size"] == list(t.min_size)
    assert ours["max_size"] == t.max_size
    assert ours["image_mean"] == pytest.approx(t.image_mean)
    assert ours["image_std"] == pytest.approx(t.image_std)
    assert ours["size_divisible"] == t.size_divisible


def test_anchors(ours, reference):
    gen = reference.rpn.anchor_generator
    assert ours["anchor"]["sizes"] == [list(s) for s in gen.sizes]
    for level_ratios in gen.aspect_ratios:
        assert ours["anchor"]["aspect_ratios"] == pytest.approx(list(level_ratios))


def test_rpn(ours, reference):
    rpn, ref = ours["rpn"], reference.rpn
    assert rpn["pre_nms_top_n_train"] == ref._pre_nms_top_n["training"]
    assert rpn["pre_nms_top_n_test"] == ref._pre_nms_top_n["testing"]
    assert rpn["post_nms_top_n_train"] == ref._post_nms_top_n["training"]
    assert rpn["post_nms_top_n_test"] == ref._post_nms_top_n["testing"]
    assert rpn["nms_thresh"] == ref.nms_thresh
    assert rpn["fg_iou_thresh"] == ref.proposal_matcher.high_threshold
    assert rpn["bg_iou_thresh"] == ref.proposal_matcher.low_threshold
    assert rpn["batch_size_per_image"] == ref.fg_bg_sampler.batch_size_per_image
    assert rpn["positive_fraction"] == ref.fg_bg_sampler.positive_fraction
    assert rpn["score_thresh"] == ref.score_thresh


def test_roi_heads(ours, reference):
    roi, ref = ours["roi"], reference.roi_heads
    assert roi["sampling_ratio"] == ref.box_roi_pool.sampling_ratio
    assert [roi["box_pool_size"]] * 2 == list(ref.box_roi_pool.output_size)
    assert roi["representation_size"] == ref.box_head.fc6.out_features == ref.box_head.fc7.out_features
    assert roi["fg_iou_thresh"] == ref.proposal_matcher.high_threshold
    assert roi["bg_iou_thresh"] == ref.proposal_matcher.low_threshold
    assert roi["batch_size_per_image"] == ref.fg_bg_sampler.batch_size_per_image
    assert roi["positive_fraction"] == ref.fg_bg_sampler.positive_fraction
    assert roi["box_coder_weights"] == pytest.approx(list(ref.box_coder.weights))
    assert roi["score_thresh"] == ref.score_thresh
    assert roi["nms_thresh"] == ref.nms_thresh
    assert roi["detections_per_img"] == ref.detections_per_img
    # torchvision's MultiScaleRoIAlign calls roi_align without the half-pixel offset.
    assert roi["aligned"] is False
    assert inspect.signature(torchvision.ops.roi_align).parameters["aligned"].default is False
    assert "aligned" not in inspect.getsource(torchvision.ops.poolers._multiscale_roi_align)


def test_mask_head(ours, reference):
    ref = reference.roi_heads
    assert [ours["mask"]["resolution"] // 2] * 2 == list(ref.mask_roi_pool.output_size)
    assert ref.mask_roi_pool.sampling_ratio == ours["roi"]["sampling_ratio"]
    # torchvision's mask loss is BCE alone.
    assert ours["mask"]["bce_weight"] == 1.0 and ours["mask"]["dice_weight"] == 0.0


def test_classes_and_backbone(ours, reference):
    assert ours["num_classes"] == reference.roi_heads.box_predictor.cls_score.out_features
    assert ours["backbone"] == "resnet50"
    # With pretrained weights torchvision trains layer2-4 (3 stages) and runs the COCO weights with
    # frozen-BN epsilon 0 (it overwrites the 1e-5 default after loading them).
    source = inspect.getsource(mask_rcnn.maskrcnn_resnet50_fpn)
    assert "_validate_trainable_layers(is_trained, trainable_backbone_layers, 5, 3)" in source
    assert ours["trainable_backbone_layers"] == 3
    assert "overwrite_eps(model, 0.0)" in source
    assert ours["frozen_bn_eps"] == 0.0
