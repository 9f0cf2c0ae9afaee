"""mrcnn-config import-tf on pipeline.config files written for the test in the TF OD API's
published format (models/research/object_detection/samples/configs/mask_rcnn_*.config): comments,
nested messages, repeated fields, lists, unknown fields; the mapping of each Mask R-CNN field,
a warning with its path for every field not carried over, and line:column errors."""
import json

from cli.test_tf_checkpoint import IRV2_CONFIG
from mrcnn_testing import assert_one_error

TF1_MASK_RCNN = r'''
# Mask R-CNN with Inception Resnet v2, Atrous version
# Configured for MSCOCO Dataset.
model {
  faster_rcnn {
    num_classes: 90
    image_resizer {
      keep_aspect_ratio_resizer {
        min_dimension: 800
        max_dimension: 1365
      }
    }
    number_of_stages: 3
    feature_extractor {
      type: 'faster_rcnn_inception_resnet_v2'
      first_stage_features_stride: 8
    }
    first_stage_anchor_generator {
      grid_anchor_generator {
        scales: [0.25, 0.5, 1.0, 2.0]
        aspect_ratios: [0.5, 1.0, 2.0]
        height_stride: 8
        width_stride: 8
      }
    }
    first_stage_atrous_rate: 2
    first_stage_box_predictor_conv_hyperparams {
      op: CONV
      regularizer { l2_regularizer { weight: 0.0 } }
      initializer { truncated_normal_initializer { stddev: 0.01 } }
    }
    first_stage_nms_score_threshold: 0.0
    first_stage_nms_iou_threshold: 0.7
    first_stage_max_proposals: 300
    first_stage_localization_loss_weight: 2.0
    first_stage_objectness_loss_weight: 1.0
    initial_crop_size: 17
    maxpool_kernel_size: 1
    maxpool_stride: 1
    second_stage_box_predictor {
      mask_rcnn_box_predictor {
        use_dropout: false
        dropout_keep_probability: 1.0
        predict_instance_masks: true
        mask_height: 33
        mask_width: 33
        mask_prediction_conv_depth: 0
        mask_prediction_num_conv_layers: 4
        fc_hyperparams {
          op: FC
          regularizer { l2_regularizer { weight: 0.0 } }
          initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }
        }
      }
    }
    second_stage_post_processing {
      batch_non_max_suppression {
        score_threshold: 0.0
        iou_threshold: 0.6
        max_detections_per_class: 100
        max_total_detections: 100
      }
      score_converter: SOFTMAX
    }
    second_stage_localization_loss_weight: 2.0
    second_stage_classification_loss_weight: 1.0
    second_stage_mask_prediction_loss_weight: 4.0
    some_future_field: 3  # not in any schema we know
  }
}

train_config: {
  batch_size: 1
  optimizer {
    momentum_optimizer: {
      learning_rate: {
        manual_step_learning_rate {
          initial_learning_rate: 0.0003
          schedule {
            step: 900000
            learning_rate: .00003
          }
          schedule {
            step: 1200000
            learning_rate: .000003
          }
        }
      }
      momentum_optimizer_value: 0.9
    }
    use_moving_average: false
  }
  gradient_clipping_by_norm: 10.0
  fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/model.ckpt"
  from_detection_checkpoint: true
  num_steps: 200000
  data_augmentation_options {
    random_horizontal_flip {
    }
  }
  data_augmentation_options {
    random_adjust_brightness { max_delta: 0.2 }
  }
  data_augmentation_options {
    random_crop_image { min_area: 0.25 max_area: 1.0 overlap_thresh: 0.5 random_coef: 0.25 }
  }
  data_augmentation_options {
    random_jpeg_quality { min_jpeg_quality: 80 }
  }
}

train_input_reader: {
  tf_record_input_reader {
    input_path: "PATH_TO_BE_CONFIGURED/mscoco_train.record-?????-of-00100"
  }
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
  load_instance_masks: true
  mask_type: PNG_MASKS
}

eval_config: {
  metrics_set: "coco_mask_metrics"
  num_examples: 8000
}

eval_input_reader: {
  tf_record_input_reader {
    input_path: "PATH_TO_BE_CONFIGURED/mscoco_val.record-?????-of-00010"
  }
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
  load_instance_masks: true
  mask_type: PNG_MASKS
  shuffle: false
  num_readers: 1
}
'''

TF2_COSINE = r'''
model { faster_rcnn {
  num_classes: 3
  image_resizer { keep_aspect_ratio_resizer { min_dimension: 512 max_dimension: 512 pad_to_max_dimension: true } }
  feature_extractor { type: "faster_rcnn_resnet101_keras" }
  first_stage_anchor_generator { grid_anchor_generator {
    scales: 0.125 scales: 0.25 scales: 0.5 scales: 1.0 scales: 2.0
    aspect_ratios: 1.0 aspect_ratios: 2.0
  } }
  second_stage_box_predictor { mask_rcnn_box_predictor { mask_height: 28 mask_width: 28 } }
} }
train_config {
  batch_size: 8
  num_steps: 5000
  optimizer { momentum_optimizer {
    learning_rate { cosine_decay_learning_rate {
      learning_rate_base: 0.04 total_steps: 5000 warmup_learning_rate: 0.004 warmup_steps: 250 } }
    momentum_optimizer_value: 0.9 } }
  fine_tune_checkpoint: "weights/maskrcnn_resnet50_fpn_coco.pth"
}
'''


def import_tf(run, workdir, text, *extra):
    (workdir / "pipeline.config").write_text(text)
    return run("mrcnn-config", "import-tf", "pipeline.config", "-o", "imported.json", *extra)


def test_tf1_mask_rcnn_pipeline_maps_each_field(run, workdir):
    result = import_tf(run, workdir, TF1_MASK_RCNN)
    assert result.returncode == 0, result.stderr
    cfg = json.loads((workdir / "imported.json").read_text())
    m = cfg["model"]
    assert m["num_classes"] == 91  # TF's 90 classes + background
    assert m["min_size"] == [800] and m["max_size"] == 1365
    assert m["anchor"]["aspect_ratios"] == [2.0, 1.0, 0.5]  # TF's width/height inverted
    assert m["rpn"]["nms_thresh"] == 0.7
    assert m["rpn"]["post_nms_top_n_train"] == 300 and m["rpn"]["post_nms_top_n_test"] == 300
    assert m["roi"]["score_thresh"] == 0.0 and m["roi"]["nms_thresh"] == 0.6 and m["roi"]["detections_per_img"] == 100
    assert m["mask"]["resolution"] == 34  # 33 rounded up to an even side
    t = cfg["train"]
    assert t["batch_size"] == 1 and t["steps"] == 200000 and t["epochs"] == 0
    assert t["optimizer"]["type"] == "sgd" and t["optimizer"]["momentum"] == 0.9
    assert t["optimizer"]["lr"] == 0.0003
    # The published file stops at 200000 steps, before its schedule steps: they never apply.
    assert t["lr_schedule"]["type"] == "multistep" and t["lr_schedule"]["milestones"] == []
    assert abs(t["lr_schedule"]["gamma"] - 0.1) < 1e-9
    assert t["grad_clip_norm"] == 10.0
    assert "init_weights" not in t  # a TensorFlow checkpoint cannot be loaded
    aug = cfg["data"]["augmentation"]
    assert [a["type"] for a in aug] == ["horizontal_flip", "color_jitter", "random_crop"]
    assert aug[1]["brightness"] == 0.2
    assert aug[2]["min_scale"] == 0.5 and aug[2]["prob"] == 0.75 and aug[2]["min_visible"] == 0.5
    d = cfg["data"]
    assert d["train"] == {"format": "tfrecord", "annotations": "PATH_TO_BE_CONFIGURED/mscoco_train.record-?????-of-00100",
                          "label_map": "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"}
    assert d["val"]["format"] == "tfrecord" and d["val"]["annotations"].endswith("mscoco_val.record-?????-of-00010")

    warnings = [l for l in result.stderr.splitlines() if "warn" in l]
    text = "\n".join(warnings)
    for path in ("model.faster_rcnn.some_future_field = 3",
                 "model.faster_rcnn.first_stage_anchor_generator.grid_anchor_generator.scales",
                 "model.faster_rcnn.first_stage_anchor_generator.grid_anchor_generator.height_stride",
                 "model.faster_rcnn.feature_extractor.type = faster_rcnn_inception_resnet_v2",
                 "train_config.fine_tune_checkpoint = PATH_TO_BE_CONFIGURED/model.ckpt",
                 "train_config.data_augmentation_options[3]",
                 "model.faster_rcnn.second_stage_mask_prediction_loss_weight = 4.0",
                 "eval_config.num_examples = 8000", "schedule step 900000: at or after num_steps 200000"):
        assert path in text, path
    # Mapped fields are not reported.
    assert "first_stage_nms_iou_threshold" not in text and "momentum_optimizer_value" not in text
    assert "not carried over" in result.stderr

    assert run("mrcnn-config", "validate", "imported.json").returncode == 0
    result = run("mrcnn-config", "get", "imported.json", "model.backbone")
    assert result.stdout.strip() == "resnet50"


def test_tf2_cosine_pipeline_and_label_map_override(run, workdir):
    (workdir / "labels.pbtxt").write_text("item { id: 1 name: 'a' } item { id: 2 name: 'b' } item { id: 3 name: 'c' }")
    result = import_tf(run, workdir, TF2_COSINE + '\ntrain_input_reader { tf_record_input_reader { input_path: '
                       '"train.record@4" } label_map_path: "old.pbtxt" }\n', "--label-map", "labels.pbtxt")
    assert result.returncode == 0, result.stderr
    cfg = json.loads((workdir / "imported.json").read_text())
    assert cfg["model"]["num_classes"] == 4 and cfg["model"]["backbone"] == "resnet101"
    assert cfg["model"]["anchor"]["sizes"] == [[32], [64], [128], [256], [512]]  # 5 scales x 256
    assert cfg["model"]["anchor"]["aspect_ratios"] == [1.0, 0.5]
    assert cfg["model"]["mask"]["resolution"] == 28
    s = cfg["train"]["lr_schedule"]
    assert s["type"] == "cosine" and s["warmup_steps"] == 250 and abs(s["warmup_factor"] - 0.1) < 1e-9
    assert cfg["train"]["optimizer"]["lr"] == 0.04 and cfg["train"]["steps"] == 5000
    assert cfg["train"]["init_weights"] == "weights/maskrcnn_resnet50_fpn_coco.pth"
    assert cfg["data"]["train"] == {"format": "tfrecord", "annotations": "train.record@4", "label_map": "labels.pbtxt"}
    assert "pad_to_max_dimension" in result.stderr


def test_bad_pipelines_fail_with_line_and_column(run, workdir):
    result = import_tf(run, workdir, "model {\n  faster_rcnn {\n    num_classes: 3\n  }\n")
    assert result.returncode == 2 and "pipeline.config:5:1: missing '}'" in result.stderr
    result = import_tf(run, workdir, "model {\n  faster_rcnn {\n    num_classes 3\n  }\n}\n")
    assert result.returncode == 2 and "pipeline.config:3:17: expected ':' or '{' after num_classes" in result.stderr
    result = import_tf(run, workdir, "model { ssd { num_classes: 3 } }\n")
    assert result.returncode == 2 and "not ssd" in result.stderr
    assert not (workdir / "imported.json").exists()
    (workdir / "imported.json").write_text("{}")
    result = import_tf(run, workdir, TF2_COSINE)
    assert result.returncode == 2 and "already exists" in result.stderr


def test_save_model_is_not_overwritten_without_force(run, workdir):
    """An existing --save-model file is refused, as the configuration is, before either is written;
    --force lets the run go on (here to the checkpoint, which is missing: nothing is written)."""
    (workdir / "pipeline.config").write_text(IRV2_CONFIG)
    (workdir / "tf.safetensors").write_text("mine")
    args = ("mrcnn-config", "import-tf", "pipeline.config", "-o", "tf.json", "--checkpoint", "no_ckpt",
            "--save-model", "tf.safetensors")
    result = run(*args)
    assert_one_error(result, "mrcnn-config", "tf.safetensors: already exists (use --force to overwrite)")
    assert not (workdir / "tf.json").exists()
    result = run(*args, "--force", timeout=300)
    assert_one_error(result, "mrcnn-config", "no_ckpt: no TF checkpoint here")
    assert not (workdir / "tf.json").exists() and (workdir / "tf.safetensors").read_text() == "mine"


def test_outputs_never_overwrite_an_input(run, workdir):
    """-o or --save-model naming the pipeline, a file of the checkpoint (.index or a data shard), or
    each other is one error before anything is read or written, --force or not."""
    (workdir / "pipeline.config").write_text(IRV2_CONFIG)
    (workdir / "ckpt.index").write_bytes(b"index")
    (workdir / "ckpt.data-00000-of-00001").write_bytes(b"data")
    base = ("mrcnn-config", "import-tf", "pipeline.config", "--checkpoint", "ckpt", "--force")
    for args, message in (
            (("-o", "tf.json", "--save-model", "ckpt.index"), "ckpt.index: a file of the TF checkpoint ckpt"),
            (("-o", "./ckpt.data-00000-of-00001", "--save-model", "tf.safetensors"),
             "./ckpt.data-00000-of-00001: a file of the TF checkpoint ckpt, which this command reads"),
            (("-o", "pipeline.config", "--save-model", "tf.safetensors"),
             "pipeline.config: the input pipeline.config itself"),
            (("-o", "tf.json", "--save-model", "./tf.json"), "./tf.json: both the configuration (-o) and --save-model")):
        assert_one_error(run(*base, *args), "mrcnn-config", message)
    assert (workdir / "pipeline.config").read_text() == IRV2_CONFIG
    assert (workdir / "ckpt.index").read_bytes() == b"index"
    assert (workdir / "ckpt.data-00000-of-00001").read_bytes() == b"data"
    assert not (workdir / "tf.json").exists() and not (workdir / "tf.safetensors").exists()


def test_tf_family_training_fields_are_listed_as_not_carried_over(run, workdir):
    """The heads' regularizers and initializers, dropout and batch_norm_trainable only train, and
    mrcnn's training does not follow them: each is a warning naming its path (was silent), with what
    mrcnn does instead, without -v."""
    (workdir / "p.config").write_text(IRV2_CONFIG.replace(
        "type: 'faster_rcnn_inception_resnet_v2_keras'",
        "type: 'faster_rcnn_inception_resnet_v2_keras' batch_norm_trainable: true").replace(
        "use_dropout: false", "use_dropout: true"))
    result = run("mrcnn-config", "import-tf", "p.config", "-o", "p.json")
    assert result.returncode == 0, result.stderr
    warnings = "\n".join(l for l in result.stderr.splitlines() if "warn" in l)
    box = "model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor."
    for hyperparams in ("model.faster_rcnn.first_stage_box_predictor_conv_hyperparams.", box + "fc_hyperparams.",
                        box + "conv_hyperparams."):
        assert f"{hyperparams}regularizer: training only, passed over (no per-layer L2" in warnings, hyperparams
        assert f"{hyperparams}initializer: training only, passed over (the heads start as" in warnings, hyperparams
    assert f"{box}use_dropout: training only, passed over (mrcnn's box head has no dropout)" in warnings
    assert f"{box}dropout_keep_probability: training only" in warnings
    assert ("model.faster_rcnn.feature_extractor.batch_norm_trainable: training only, passed over (the extractor's "
            "batch norms stay frozen)") in warnings
    assert "model.faster_rcnn.resize_masks: training only" in warnings
    assert "not carried over (listed above)" in result.stderr
