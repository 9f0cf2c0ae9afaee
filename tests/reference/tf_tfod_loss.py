"""The real TF OD API's training losses of one batch, for test_tfod_loss_parity.py (run by the TF
venv of ../shared/tfod-reference, TFOD_SRC set): the Faster / Mask R-CNN of a pipeline.config built
for training (is_training=True), its weights restored from a checkpoint of reference.py, the
batch's images preprocessed and their groundtruth provided, then predict and model.loss. Dumps
every loss term, the prediction dict (what the losses read) and the preprocessed batch to an .npz.

Usage: tf_tfod_loss.py CONFIG CHECKPOINT GROUNDTRUTH.npz OUT.npz IMAGE... [--classes K]
       [--size S] [--proposals P] [--add_at_proposals N --groundtruth_out GT.npz]
GROUNDTRUTH.npz: per image i, boxes{i} (N, 4) normalised [ymin, xmin, ymax, xmax], classes{i} (N)
from 1, masks{i} (N, S, S) float at the input size."""
import argparse
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.environ["TFOD_SRC"])

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from object_detection.builders import model_builder  # noqa: E402
from object_detection.utils import config_util  # noqa: E402

PREDICTIONS = ["rpn_box_encodings", "rpn_objectness_predictions_with_background", "anchors", "proposal_boxes",
               "proposal_boxes_normalized", "num_proposals", "refined_box_encodings",
               "class_predictions_with_background", "mask_predictions", "image_shape"]


def build(config, classes, size, proposals):
    """The training model, with reference.py's overrides (classes, fixed resizer, proposals)."""
    model_config = config_util.get_configs_from_pipeline_file(config)["model"]
    frcnn = model_config.faster_rcnn
    frcnn.num_classes = classes
    frcnn.image_resizer.fixed_shape_resizer.height = size
    frcnn.image_resizer.fixed_shape_resizer.width = size
    frcnn.first_stage_max_proposals = proposals
    return model_builder.build(model_config=model_config, is_training=True)


def add_at_proposals(gt, proposals, count, classes, size):
    """Adds `count` objects per image at its first proposals (each side moved in by 5%: IoU 0.81,
    positives for the box classifier, which random RPN weights rarely give real objects), elliptic
    masks inside their boxes, classes 2, 3, ... in turn. The proposals do not depend on the
    groundtruth; every one is in the minibatch, so the batch stays the same."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    for i in range(len(proposals)):
        boxes, masks = [], []
        for y0, x0, y1, x1 in proposals[i, :count]:
            dy, dx = 0.05 * (y1 - y0), 0.05 * (x1 - x0)
            box = np.array([y0 + dy, x0 + dx, y1 - dy, x1 - dx], np.float32)
            centre, radius = (box[:2] + box[2:]) / 2 * size, (box[2:] - box[:2]) / 2 * size
            masks.append(((rows - centre[0]) / radius[0]) ** 2 + ((cols - centre[1]) / radius[1]) ** 2 <= 1)
            boxes.append(box)
        gt[f"boxes{i}"] = np.concatenate([gt[f"boxes{i}"], boxes]).astype(np.float32)
        gt[f"classes{i}"] = np.concatenate([gt[f"classes{i}"], np.arange(count) % (classes - 1) + 2]).astype(np.int64)
        gt[f"masks{i}"] = np.concatenate([gt[f"masks{i}"], masks]).astype(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("groundtruth")
    p.add_argument("out")
    p.add_argument("images", nargs="+")
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--proposals", type=int, default=64)
    p.add_argument("--add_at_proposals", type=int, default=0, help="objects added at each image's first proposals")
    p.add_argument("--groundtruth_out", default="", help="write the groundtruth used here (same format)")
    a = p.parse_args()
    tf.keras.utils.set_random_seed(0)
    model = build(a.config, a.classes, a.size, a.proposals)
    images = [tf.cast(tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False), tf.float32)[None]
              for f in a.images]
    preprocessed, shapes = zip(*(model.preprocess(image) for image in images))
    preprocessed, shapes = tf.concat(preprocessed, 0), tf.concat(shapes, 0)
    gt = {k: v for k, v in np.load(a.groundtruth).items()}
    count = len(a.images)

    @tf.function
    def losses(x, true_shapes, boxes, classes, masks):
        model.provide_groundtruth(groundtruth_boxes_list=boxes,
                                  groundtruth_classes_list=[tf.one_hot(c - 1, a.classes) for c in classes],
                                  groundtruth_masks_list=masks)
        prediction = model.predict(x, true_shapes)
        return prediction, model.loss(prediction, true_shapes)

    def run():
        return losses(preprocessed, shapes, *([tf.constant(gt[f"{k}{i}"]) for i in range(count)]
                                              for k in ("boxes", "classes", "masks")))

    run()  # creates the variables (and traces)
    tf.train.Checkpoint(model=model).restore(a.checkpoint).assert_existing_objects_matched()
    if a.add_at_proposals:
        add_at_proposals(gt, run()[0]["proposal_boxes_normalized"].numpy(), a.add_at_proposals, a.classes, a.size)
    prediction, loss = run()
    if a.groundtruth_out:
        np.savez(a.groundtruth_out, **gt)
    out = {"preprocessed": preprocessed.numpy(), "true_image_shapes": shapes.numpy()}
    out.update({"loss/" + k: v.numpy() for k, v in loss.items()})
    out.update({"pred/" + k: prediction[k].numpy() for k in PREDICTIONS})
    np.savez(a.out, **out)
    print({k: float(v) for k, v in loss.items()})


if __name__ == "__main__":
    main()
