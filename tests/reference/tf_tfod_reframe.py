"""The TF OD API's own reframing of box masks into the image (ops.reframe_box_masks_to_image_masks,
as its inference notebooks and eval_util apply it) on reference.py dumps: each dump's detection
masks on its detection boxes, into the original image's height x width.

Usage: python tf_tfod_reframe.py OUT.npz DUMP.npz [DUMP.npz ...]  (run with TFOD_SRC set, as reference.py)."""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.environ["TFOD_SRC"])

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from object_detection.utils import ops  # noqa: E402

out = {}
for path in sys.argv[2:]:
    dump = np.load(path)
    count = int(dump["det/num_detections"][0])
    height, width = dump["image"].shape[1:3]
    masks = ops.reframe_box_masks_to_image_masks(tf.constant(dump["det/detection_masks"][0, :count]),
                                                 tf.constant(dump["det/detection_boxes"][0, :count]), height, width)
    out[os.path.basename(path)] = masks.numpy()
np.savez(sys.argv[1], **out)
