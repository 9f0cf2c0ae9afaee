"""The TF OD API's own Inception-ResNet-v2 feature extractor, restored from a reference checkpoint,
on the preprocessed images of reference.py dumps: block17_20_ac (which the dump lacks: predict's
rpn_features_to_crop is a list), the crops the meta-architecture cuts from it at the dump's
proposals (its native crop_and_resize, 17x17) and the box classifier's features on them.

Usage: python tf_inception_features.py PIPELINE.config CKPT_PREFIX OUT.npz DUMP.npz [DUMP.npz ...]
(run with TFOD_SRC set, as reference.py)."""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.environ["TFOD_SRC"])

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from object_detection.builders import model_builder  # noqa: E402
from object_detection.utils import config_util  # noqa: E402

config, prefix, out_path, dumps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
model_config = config_util.get_configs_from_pipeline_file(config)["model"]
model_config.faster_rcnn.num_classes = 3  # as reference.py; the extractor does not depend on it
model = model_builder.build(model_config=model_config, is_training=False)
crop_size = model_config.faster_rcnn.initial_crop_size


@tf.function
def proposal_features(image):
    return model._extract_proposal_features(image)[0]


@tf.function
def box_classifier_features(crops):
    return model._extract_box_classifier_features(crops)


out = {}
restored = False
for i, path in enumerate(dumps):
    dump = np.load(path)
    image = tf.constant(dump["preprocessed"])
    if not restored:  # the extractor's variables exist once it has run; then restore them
        proposal_features(image)
        tf.train.Checkpoint(model=model).restore(prefix).expect_partial()
        restored = True
    features = proposal_features(image)
    boxes = dump["pred/proposal_boxes_normalized"][0]
    crops = tf.image.crop_and_resize(features, boxes, tf.zeros([len(boxes)], tf.int32), [crop_size, crop_size])
    out[f"{i}/block17_20_ac"] = features.numpy()
    out[f"{i}/crops"] = crops.numpy()
    out[f"{i}/box_classifier_features"] = box_classifier_features(crops).numpy()
    out[f"{i}/reference_box_classifier_features"] = dump["pred/box_classifier_features"]
np.savez(out_path, **out)
