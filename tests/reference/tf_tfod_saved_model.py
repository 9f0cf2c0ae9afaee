"""The TF OD API's SavedModel as users make and run it: exported by its exporter
(exporter_lib_v2.export_inference_graph, input_type image_tensor, as exporter_main_v2.py does) from
a pipeline.config and a training checkpoint folder, then loaded with tf.saved_model.load and run
through its serving signature on one image; the detection masks reframed into the image by the OD
API's own ops.reframe_box_masks_to_image_masks (as its inference notebook does).

Usage (run with TFOD_SRC set, as reference.py):
  python tf_tfod_saved_model.py export PIPELINE.config CHECKPOINT_DIR OUTPUT_DIR
  python tf_tfod_saved_model.py run SAVED_MODEL_DIR IMAGE OUT.npz
`run` writes the signature's detections (boxes, scores, classes, masks; the valid ones of the one
image), image_masks (the masks reframed into the image, float: threshold 0.5 as the notebook's)
and the image."""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.environ["TFOD_SRC"])

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def export(pipeline_path, checkpoint_dir, output_dir):
    from google.protobuf import text_format
    from object_detection import exporter_lib_v2
    from object_detection.protos import pipeline_pb2

    pipeline = pipeline_pb2.TrainEvalPipelineConfig()
    with tf.io.gfile.GFile(pipeline_path) as f:
        text_format.Merge(f.read(), pipeline)
    exporter_lib_v2.export_inference_graph("image_tensor", pipeline, checkpoint_dir, output_dir)


def run(saved_model, image_path, out_path):
    from object_detection.utils import ops

    image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
    detect = tf.saved_model.load(saved_model).signatures["serving_default"]
    result = detect(input_tensor=image[tf.newaxis])
    count = int(result["num_detections"][0])
    outputs = {key: result[key].numpy()[0, :count]
               for key in ("detection_boxes", "detection_scores", "detection_classes", "detection_masks")}
    height, width = image.shape[:2]
    outputs["image_masks"] = ops.reframe_box_masks_to_image_masks(
        tf.constant(outputs["detection_masks"]), tf.constant(outputs["detection_boxes"]), height, width).numpy()
    outputs["image"] = image.numpy()
    np.savez(out_path, **outputs)


if __name__ == "__main__":
    {"export": export, "run": run}[sys.argv[1]](*sys.argv[2:])
