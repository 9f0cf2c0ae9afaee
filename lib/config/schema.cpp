#include "config/schema.h"

#include <cmath>
#include <sstream>

#include "io/image_file.h"

namespace mrcnn::config {
namespace {

// Upper bounds of sizes, counts and periods: generous for real use, and far below where the
// arithmetic on them (products, 32-bit image sides, allocations, seconds as milliseconds) overflows.
constexpr double kMaxBatch = 4096;
constexpr double kMaxChannels = 16384;
constexpr double kMaxImageSide = 65536;
constexpr double kMaxClasses = 1e7;  // above the largest label maps (the tests import 1,000,000 classes)
constexpr double kMaxBoxes = 1e6;  // proposals, sampled anchors and proposals, detections
constexpr double kMaxSteps = 1e9;
constexpr double kMaxEpochs = 1e6;
constexpr double kMaxTimeoutSeconds = 1e7;
constexpr double kMaxBands = 64;  // input channels: multispectral stacks have 5-16
constexpr double kMaxPixelValue = 4294967295.0;  // the largest value of a 32-bit unsigned sample

KeySpec key(std::string path, ValueType type, Json default_value, std::string help) {
  KeySpec spec;
  spec.path = std::move(path);
  spec.type = type;
  spec.default_value = std::move(default_value);
  spec.help = std::move(help);
  return spec;
}
KeySpec integer(std::string path, long long value, std::string help) {
  return key(std::move(path), ValueType::Int, value, std::move(help));
}
KeySpec number(std::string path, double value, std::string help) {
  return key(std::move(path), ValueType::Float, value, std::move(help));
}
KeySpec boolean(std::string path, bool value, std::string help) {
  return key(std::move(path), ValueType::Bool, value, std::move(help));
}
KeySpec text(std::string path, std::string value, std::string help) {
  return key(std::move(path), ValueType::String, std::move(value), std::move(help));
}
KeySpec file_path(std::string path, std::string help) {
  return key(std::move(path), ValueType::Path, "", std::move(help));
}
KeySpec choice(std::string path, std::string value, std::vector<std::string> choices, std::string help) {
  KeySpec spec = key(std::move(path), ValueType::Choice, std::move(value), std::move(help));
  spec.choices = std::move(choices);
  return spec;
}
KeySpec probability(std::string path, double value, std::string help) {
  return number(std::move(path), value, std::move(help)).range(0, 1);
}

void add_data_set(std::vector<KeySpec>& keys, const std::string& name, const std::string& role) {
  const std::string p = "data." + name + ".";
  keys.push_back(choice(p + "format", "coco", {"coco", "mask_png", "tfrecord", "via", "labelme", "yolo_seg"},
                        "Format of the " + role + " set: coco (COCO JSON), mask_png (an image folder and a folder of "
                        "instance-id mask PNGs, Penn-Fudan layout), tfrecord (TF OD API records), via (VGG Image "
                        "Annotator JSON), labelme (a folder of LabelMe JSON files) or yolo_seg (YOLO segmentation "
                        "label folder); see docs/data-formats.md"));
  keys.push_back(file_path(p + "images", "Folder of the " + role +
                                             " images (coco, mask_png, via, yolo_seg; labelme: where imagePath is not found)"));
  keys.push_back(file_path(p + "annotations",
                           "COCO JSON file (coco), mask PNG folder (mask_png), record path/glob (tfrecord), VIA JSON "
                           "(via), LabelMe JSON folder (labelme) or YOLO label folder (yolo_seg) of the " +
                               role + " set"));
  keys.push_back(file_path(p + "label_map",
                           "Label map (label_map.pbtxt or JSON) naming the classes; empty: from the annotations"));
  keys.push_back(text(p + "class_attribute", "class",
                      "via: the region attribute naming each region's class (not needed with one class)"));
  keys.push_back(file_path(p + "names", "yolo_seg: class names, a data.yaml (names:) or a text file of a name a line"));
  keys.push_back(key(p + "bands", ValueType::IntList, Json::array(),
                    "Which channels of each " + role + " image feed the model, in order (0-based, file order: R, G, B, "
                    "then extra bands); empty: " +
                        (name == "val" ? "data.train.bands" : "all of them (8-bit colour images as RGB)"))
                     .may_be_empty()
                     .range(0, kMaxBands - 1));
  keys.push_back(text(p + "band_files", "",
                      std::string("Bands stored as one single-band file each, next to the file the labels "
                                  "name: a pattern with {stem} (that file's name without extension) and {band} "
                                  "(each number in bands), e.g. {stem}_B{band}.tif; empty: ") +
                          (name == "val" ? "data.train.band_files" : "the bands are channels of that one file")));
  keys.push_back(number(p + "pixel_max", 0,
                        "The pixel value that means full scale in the " + role + " images (4095 for 12-bit data in "
                        "16-bit files); 0: " +
                            (name == "val" ? "data.train.pixel_max"
                                           : "255 for 8-bit images, and 16-bit or float images are refused "
                                             "until it is set"))
                     .at_least(0)
                     .at_most(kMaxPixelValue));
}

// The TF OD API family's training fields (model/tfod_losses.h): each stage's minibatch sampler
// and loss weights, under the stage's keys.
void add_tf_first_stage_training(std::vector<KeySpec>& k, const std::string& p) {
  k.push_back(integer(p + "first_stage.minibatch_size", 256, "Training: anchors per image in the RPN's loss (sampled)")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(probability(p + "first_stage.positive_balance_fraction", 0.5,
                          "Training: largest share of positives in that sample"));
  k.push_back(number(p + "first_stage.localization_loss_weight", 2.0, "Training: weight of the RPN's box loss")
                  .at_least(0).at_most(1e6));
  k.push_back(number(p + "first_stage.objectness_loss_weight", 1.0, "Training: weight of the RPN's objectness loss")
                  .at_least(0).at_most(1e6));
}

void add_tf_second_stage_training(std::vector<KeySpec>& k, const std::string& p) {
  k.push_back(integer(p + "second_stage.batch_size", 64,
                      "Training: proposals per image sampled for the box classifier (at most first_stage.max_proposals)")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(probability(p + "second_stage.balance_fraction", 0.25, "Training: largest share of positives in that sample"));
  k.push_back(number(p + "second_stage.localization_loss_weight", 2.0, "Training: weight of the box classifier's box loss")
                  .at_least(0).at_most(1e6));
  k.push_back(number(p + "second_stage.classification_loss_weight", 1.0,
                     "Training: weight of the box classifier's class loss").at_least(0).at_most(1e6));
  k.push_back(number(p + "second_stage.mask_loss_weight", 4.0, "Training: weight of the mask loss").at_least(0).at_most(1e6));
  k.push_back(number(p + "second_stage.classification_logit_scale", 1.0,
                     "Training: the weighted_softmax classification loss divides the logits by this")
                  .above(0).at_most(1e6));
  k.push_back(choice(p + "fine_tune_checkpoint_type", "detection", {"detection", "classification", "full"},
                     "Training from train.init_weights: detection keeps all but the class-dependent layers (class "
                     "logits, per-class box encodings and masks), classification the extractor only, full all"));
}

// The TF OD API's Faster / Mask R-CNN on Inception-ResNet-v2 (model.arch tf_faster_rcnn): what a
// pipeline.config's faster_rcnn { } block holds (lib/model/tfod_settings.h, docs/tfod-model.md).
// Defaults are the published mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config's.
void add_tf_model(std::vector<KeySpec>& k) {
  using V = ValueType;
  const std::string p = "model.tf.";
  k.push_back(integer(p + "number_of_stages", 3, "1: proposals only, 2: + box classifier, 3: + masks").range(1, 3));
  k.push_back(choice(p + "resizer.type", "fixed_shape", {"fixed_shape", "keep_aspect_ratio"},
                     "image_resizer: fixed_shape_resizer (stretch) or keep_aspect_ratio_resizer"));
  k.push_back(integer(p + "resizer.height", 1024, "fixed_shape: input height").at_least(1).at_most(kMaxImageSide));
  k.push_back(integer(p + "resizer.width", 1024, "fixed_shape: input width").at_least(1).at_most(kMaxImageSide));
  k.push_back(integer(p + "resizer.min_dimension", 600, "keep_aspect_ratio: the shorter side's target")
                  .at_least(1).at_most(kMaxImageSide));
  k.push_back(integer(p + "resizer.max_dimension", 1024, "keep_aspect_ratio: the longer side's largest size")
                  .at_least(1).at_most(kMaxImageSide));
  k.push_back(boolean(p + "resizer.pad_to_max_dimension", false,
                      "keep_aspect_ratio: pad with zeros at the bottom/right to max_dimension square"));
  k.push_back(key(p + "anchors.scales", V::FloatList, Json::array({0.25, 0.5, 1.0, 2.0}),
                  "grid_anchor_generator scales (times the base size)").above(0).at_most(1e4));
  k.push_back(key(p + "anchors.aspect_ratios", V::FloatList, Json::array({0.5, 1.0, 2.0}),
                  "grid_anchor_generator aspect ratios, TF's width / height").above(0).at_most(1e4));
  for (const char* side : {"height", "width"}) {
    const std::string s = side;
    k.push_back(number(p + "anchors." + s, 256, "Base anchor " + s + " in pixels").above(0).at_most(kMaxImageSide));
    k.push_back(number(p + "anchors." + s + "_stride", 16, "Anchor grid stride along the " + s + ", pixels")
                    .above(0).at_most(kMaxImageSide));
    k.push_back(number(p + "anchors." + s + "_offset", 0, "Anchor grid offset along the " + s + ", pixels")
                    .range(0, kMaxImageSide));
  }
  k.push_back(integer(p + "first_stage.kernel_size", 3, "RPNConv kernel size").range(1, 63));
  k.push_back(integer(p + "first_stage.depth", 512, "RPNConv output channels").at_least(1).at_most(kMaxChannels));
  k.push_back(integer(p + "first_stage.atrous_rate", 1, "RPNConv dilation").range(1, 64));
  k.push_back(probability(p + "first_stage.nms_score_threshold", 0.0, "Proposals must score above this"));
  k.push_back(probability(p + "first_stage.nms_iou_threshold", 0.7, "IoU above which the RPN's NMS drops a box"));
  k.push_back(integer(p + "first_stage.max_proposals", 300, "Proposals kept per image")
                  .at_least(1).at_most(kMaxBoxes));
  add_tf_first_stage_training(k, p);
  k.push_back(integer(p + "initial_crop_size", 17, "Side of each proposal's crop_and_resize of block17_20_ac")
                  .range(1, 1024));
  k.push_back(integer(p + "maxpool_kernel_size", 1, "Max pool of the crops (0: none)").range(0, 64));
  k.push_back(integer(p + "maxpool_stride", 1, "Stride of that max pool").range(0, 64));
  k.push_back(boolean(p + "box_predictor.share_box_across_classes", false, "One box encoding for every class"));
  k.push_back(boolean(p + "box_predictor.predict_instance_masks", true, "The mask head exists (masks at stage 3)"));
  k.push_back(integer(p + "box_predictor.mask_height", 33, "Mask height the head predicts").range(1, 1024));
  k.push_back(integer(p + "box_predictor.mask_width", 33, "Mask width the head predicts").range(1, 1024));
  k.push_back(integer(p + "box_predictor.mask_conv_layers", 4, "mask_prediction_num_conv_layers (the last included)")
                  .range(1, 64));
  k.push_back(integer(p + "box_predictor.mask_conv_depth", 0,
                      "Channels of the mask convolutions; 0: the OD API's automatic depth")
                  .at_least(0).at_most(kMaxChannels));
  k.push_back(boolean(p + "box_predictor.masks_are_class_agnostic", false, "One mask for every class"));
  k.push_back(probability(p + "second_stage.score_threshold", 0.0, "Detections must score above this"));
  k.push_back(probability(p + "second_stage.iou_threshold", 0.6, "IoU above which per-class NMS drops a detection"));
  k.push_back(integer(p + "second_stage.max_detections_per_class", 100, "Most detections per class")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(integer(p + "second_stage.max_total_detections", 100, "Most detections per image")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(choice(p + "second_stage.score_converter", "SOFTMAX", {"IDENTITY", "SIGMOID", "SOFTMAX"},
                     "Class logits to scores"));
  k.push_back(number(p + "second_stage.logit_scale", 1.0, "Logits are divided by this before SOFTMAX").above(0).at_most(1e6));
  add_tf_second_stage_training(k, p);
}

std::vector<KeySpec> build_schema() {
  using V = ValueType;
  std::vector<KeySpec> k;
  k.push_back(text("description", "", "What this experiment is, in a line"));

  // model: defaults are torchvision's maskrcnn_resnet50_fpn.
  k.push_back(choice("model.arch", "torchvision", {"torchvision", "tf_faster_rcnn"},
                     "Model family: torchvision's Mask R-CNN (ResNet-FPN, model.* keys) or the TF OD API's Faster / "
                     "Mask R-CNN on Inception-ResNet-v2 (model.tf.*, model.num_classes; docs/tfod-model.md)"));
  k.push_back(choice("model.backbone", "resnet50", {"resnet18", "resnet34", "resnet50", "resnet101"},
                     "ResNet backbone (with an FPN over C2-C5)"));
  k.push_back(integer("model.trainable_backbone_layers", 3,
                      "ResNet stages that train, counted from layer4 down; 0 freezes the backbone, 5 trains it all")
                  .range(0, 5));
  k.push_back(integer("model.num_classes", 91, "Number of classes including the background (torchvision's count)")
                  .at_least(2).at_most(kMaxClasses));
  KeySpec min_size = key("model.min_size", V::IntList, Json::array({800}),
                         "Shorter image side after resizing; a list picks one at random per training image "
                         "(multi-scale training; inference uses the last)");
  min_size.scalar_as_list = true;
  k.push_back(min_size.at_least(1).at_most(kMaxImageSide));
  k.push_back(integer("model.max_size", 1333, "Upper bound of the longer image side after resizing")
                  .at_least(1).at_most(kMaxImageSide));
  k.push_back(integer("model.input_channels", 3,
                      "Bands of the model's input images (3: RGB; 1: grayscale; 4+: e.g. RGB + near-infrared); "
                      "the first convolution takes this many, see docs/data-formats.md")
                  .range(1, kMaxBands));
  k.push_back(key("model.image_mean", V::FloatList, Json::array({0.485, 0.456, 0.406}),
                  "Per-band mean (images in [0,1]) subtracted before the backbone, one per input channel")
                  .of_length_from("model.input_channels"));
  k.push_back(key("model.image_std", V::FloatList, Json::array({0.229, 0.224, 0.225}),
                  "Per-band standard deviation the images are divided by, one per input channel")
                  .of_length_from("model.input_channels")
                  .above(0));
  k.push_back(integer("model.size_divisible", 32, "The padded batch's height and width are multiples of this")
                  .at_least(1)
                  .at_most(4096));
  k.push_back(choice("model.backbone_norm", "frozen_bn", {"frozen_bn", "bn"},
                     "Backbone batch norms: frozen statistics (fine-tuning pretrained weights), or trainable "
                     "batch norm that learns its statistics (training from scratch, as torchvision does without "
                     "pretrained weights)"));
  k.push_back(integer("model.fpn_channels", 256,
                      "Channels of every FPN level, and so of the RPN head and the ROI features (torchvision: "
                      "256, what its COCO weights need; 128 makes a small model train about twice as fast)")
                  .at_least(1).at_most(kMaxChannels));
  k.push_back(number("model.frozen_bn_eps", 1e-5,
                     "Epsilon of the frozen batch norms; torchvision's COCO weights expect 0")
                  .at_least(0));
  k.push_back(key("model.anchor.sizes", V::IntListList, Json::parse("[[32],[64],[128],[256],[512]]"),
                  "Anchor sizes in pixels, one list per FPN level P2-P6")
                  .above(0)
                  .at_most(kMaxImageSide));
  k.push_back(key("model.anchor.aspect_ratios", V::FloatList, Json::array({0.5, 1.0, 2.0}),
                  "Anchor aspect ratios (height/width), the same at every level")
                  .above(0));

  k.push_back(integer("model.rpn.pre_nms_top_n_train", 2000, "Proposals kept per level before NMS, training")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(integer("model.rpn.pre_nms_top_n_test", 1000, "Proposals kept per level before NMS, inference")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(integer("model.rpn.post_nms_top_n_train", 2000, "Proposals kept per image after NMS, training")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(integer("model.rpn.post_nms_top_n_test", 1000, "Proposals kept per image after NMS, inference")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(probability("model.rpn.nms_thresh", 0.7, "IoU above which NMS drops a proposal"));
  k.push_back(probability("model.rpn.fg_iou_thresh", 0.7, "Anchors with IoU >= this to a box are positives"));
  k.push_back(probability("model.rpn.bg_iou_thresh", 0.3, "Anchors with IoU < this to every box are negatives"));
  k.push_back(integer("model.rpn.batch_size_per_image", 256, "Anchors sampled per image for the RPN losses")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(probability("model.rpn.positive_fraction", 0.5, "Largest share of positives among sampled anchors"));
  k.push_back(probability("model.rpn.score_thresh", 0.0, "Proposals scoring below this are dropped"));

  k.push_back(integer("model.roi.sampling_ratio", 2, "ROIAlign sampling points per bin side; 0: adaptive")
                  .at_least(0).at_most(64));
  k.push_back(boolean("model.roi.aligned", false, "ROIAlign with the half-pixel offset (torchvision uses false)"));
  k.push_back(integer("model.roi.box_pool_size", 7, "ROIAlign output size for the box head").at_least(1).at_most(128));
  k.push_back(integer("model.roi.representation_size", 1024, "Width of the box head's two MLP layers")
                  .at_least(1).at_most(kMaxChannels));
  k.push_back(probability("model.roi.fg_iou_thresh", 0.5, "Proposals with IoU >= this to a box are foreground"));
  k.push_back(probability("model.roi.bg_iou_thresh", 0.5, "Proposals with IoU < this to every box are background"));
  k.push_back(integer("model.roi.batch_size_per_image", 512, "Proposals sampled per image for the box losses")
                  .at_least(1).at_most(kMaxBoxes));
  k.push_back(probability("model.roi.positive_fraction", 0.25, "Largest share of foreground among sampled proposals"));
  k.push_back(key("model.roi.box_coder_weights", V::FloatList, Json::array({10.0, 10.0, 5.0, 5.0}),
                  "Weights (wx, wy, ww, wh) of the box regression targets")
                  .of_length(4)
                  .above(0));
  k.push_back(probability("model.roi.score_thresh", 0.05, "Detections scoring below this are dropped"));
  k.push_back(probability("model.roi.nms_thresh", 0.5, "IoU above which per-class NMS drops a detection"));
  k.push_back(integer("model.roi.detections_per_img", 100, "Most detections returned per image")
                  .at_least(1).at_most(kMaxBoxes));

  k.push_back(integer("model.mask.resolution", 28,
                      "Side of the predicted mask; the mask head pools ROIs at half of it (14 for 28)")
                  .at_least(2).at_most(1024));
  k.push_back(integer("model.mask.head_channels", 256,
                      "Channels of the mask head's four convolutions (torchvision: 256; fewer train faster)")
                  .at_least(1).at_most(kMaxChannels));
  k.push_back(number("model.mask.bce_weight", 1.0, "Weight of the binary cross-entropy mask loss").at_least(0));
  k.push_back(number("model.mask.dice_weight", 1.0,
                     "Weight of the Dice mask loss (0 with bce_weight 1 is torchvision's loss)")
                  .at_least(0));
  k.push_back(number("model.mask.dice_smooth", 1.0, "Smoothing term of the Dice loss").at_least(0));
  add_tf_model(k);

  // data
  add_data_set(k, "train", "training");
  add_data_set(k, "val", "validation");
  k.push_back(probability("data.val_fraction", 0.0,
                          "Share of the training images held out for validation when data.val.annotations is empty")
                  .below(1));
  k.push_back(key("data.augmentation", V::AugmentationList,
                  Json::parse(R"([{"type": "horizontal_flip", "prob": 0.5}])"),
                  "Training augmentations in order: horizontal_flip, color_jitter, random_crop"));
  k.push_back(integer("data.workers", 2, "Threads that decode and augment images ahead of the model").range(0, 64));
  k.push_back(integer("data.max_image_pixels", kDefaultMaxImagePixels,
                      "Training and validation images with more pixels than this are refused before they are "
                      "decoded (a guard against decompression bombs; mrcnn-infer's --max-image-pixels)")
                  .at_least(1).at_most(kMaxImageSide * kMaxImageSide));
  k.push_back(choice("data.on_invalid", "skip", {"skip", "fail"},
                     "What a broken image or annotation does: skip it (counted in the log) or stop with an error"));
  k.push_back(boolean("data.aspect_ratio_grouping", true, "Batch portrait and landscape images separately"));
  k.push_back(boolean("data.keep_empty_images", true,
                      "Keep images without objects as negative samples (background only); false leaves them out"));

  // train: defaults are torchvision's reference recipe (8 GPUs x 2 images, 26 epochs).
  k.push_back(integer("train.batch_size", 2, "Images per optimizer step, over all processes")
                  .at_least(1).at_most(kMaxBatch));
  k.push_back(integer("train.steps", 0, "Run length in optimizer steps; 0: use train.epochs")
                  .at_least(0).at_most(kMaxSteps));
  k.push_back(integer("train.epochs", 26, "Run length in passes over the training set; 0: use train.steps")
                  .at_least(0).at_most(kMaxEpochs));
  k.push_back(choice("train.optimizer.type", "sgd", {"sgd", "adamw"}, "SGD with momentum, or AdamW"));
  k.push_back(number("train.optimizer.lr", 0.02, "Peak learning rate").above(0));
  k.push_back(number("train.optimizer.momentum", 0.9, "SGD momentum").range(0, 1).below(1));
  k.push_back(number("train.optimizer.weight_decay", 1e-4, "L2 weight decay").at_least(0));
  k.push_back(key("train.optimizer.betas", V::FloatList, Json::array({0.9, 0.999}), "AdamW betas")
                  .of_length(2)
                  .range(0, 1)
                  .below(1));
  k.push_back(choice("train.lr_schedule.type", "multistep", {"constant", "multistep", "cosine"},
                     "Learning-rate schedule after the warm-up"));
  k.push_back(integer("train.lr_schedule.warmup_steps", 1000, "Steps of linear warm-up from warmup_factor x lr")
                  .at_least(0).at_most(kMaxSteps));
  k.push_back(number("train.lr_schedule.warmup_factor", 0.001, "Learning-rate factor at step 0 of the warm-up")
                  .above(0)
                  .range(0, 1));
  k.push_back(key("train.lr_schedule.milestones", V::IntList, Json::array({16, 22}),
                  "multistep: where the rate is multiplied by gamma, in epochs (or steps when train.steps is set)")
                  .at_least(1).at_most(kMaxSteps)
                  .may_be_empty());
  k.push_back(number("train.lr_schedule.gamma", 0.1, "multistep: the factor applied at each milestone")
                  .above(0)
                  .range(0, 1));
  k.push_back(number("train.lr_schedule.min_lr_factor", 0.0, "cosine: final learning rate as a share of lr")
                  .range(0, 1));
  k.push_back(number("train.grad_clip_norm", 0.0, "Clip the gradient norm to this; 0: no clipping").at_least(0));
  k.push_back(choice("train.amp", "off", {"off", "bf16", "fp16"},
                     "Mixed precision on CUDA: bf16, or fp16 with loss scaling"));
  k.push_back(choice("train.dtype", "float32", {"float32", "float64"},
                     "Weights and activations; float64 is several times slower and meant for numerical checks "
                     "(data-parallel training equals one process to 1e-9 in float64, where float32 rounding "
                     "moves sampled proposals)"));
  k.push_back(choice("train.channels_last", "auto", {"auto", "on", "off"},
                     "Convolutions on NHWC activations and weights; auto: on (faster on the CPU with oneDNN and on "
                     "CUDA with cuDNN, docs/BENCHMARKS.md); off: NCHW"));
  k.push_back(boolean("train.cudnn_benchmark", false,
                      "CUDA: let cuDNN time its convolution algorithms for each new batch shape and keep the "
                      "fastest; pays off when the shapes repeat (one image size), not with multi-scale sizes"));
  k.push_back(integer("train.checkpoint_period", 0, "Steps between checkpoints; 0: at the end of each epoch")
                  .at_least(0).at_most(kMaxSteps));
  k.push_back(integer("train.eval_period", 0, "Steps between validations; 0: at the end of each epoch")
                  .at_least(0).at_most(kMaxSteps));
  k.push_back(integer("train.log_period", 20, "Steps between log lines and metrics records")
                  .at_least(1).at_most(kMaxSteps));
  k.push_back(file_path("train.init_weights",
                        "Weights to start from (torchvision state dict or mrcnn checkpoint); layers whose shape "
                        "differs, such as the class predictors, start fresh"));
  k.push_back(integer("train.seed", 42, "Seed of weight init, shuffling and augmentation").at_least(0));
  k.push_back(boolean("train.tensorboard", false, "Also write TensorBoard event files"));
  k.push_back(number("train.dist_timeout", 600.0,
                     "Multi-process training: seconds a process waits for the others (joining, each collective) "
                     "before it stops with an error saying another process died or hangs; more than rank 0's "
                     "longest lone work (checkpoint, validation scoring)")
                  .above(0)
                  .at_most(kMaxTimeoutSeconds));

  k.push_back(probability("infer.score_threshold", 0.5, "Detections scoring below this are not written"));
  k.push_back(integer("infer.batch_size", 1, "Images per forward pass").at_least(1).at_most(kMaxBatch));
  k.push_back(choice("infer.precision", "auto", {"auto", "fp32", "bf16", "fp16"},
                     "Forward pass of mrcnn-infer, mrcnn-eval --config and training's validation: auto (bf16 "
                     "where the hardware computes it natively: CUDA of compute capability 8 or more, a CPU "
                     "with AMX, or an AMD CPU with AVX-512 BF16, that ONEDNN_MAX_CPU_ISA leaves to oneDNN; fp32 elsewhere and "
                     "for model.arch tf_faster_rcnn; the log says which and why), fp32, or bf16/fp16 autocast "
                     "(fp16: CUDA only)"));
  k.push_back(boolean("infer.cudnn_benchmark", false,
                      "CUDA: let cuDNN time its convolution algorithms for each new input shape and keep the "
                      "fastest; pays off on long runs over one image size (the mask head's shape still "
                      "changes with the number of detections)"));
  k.push_back(key("infer.device", V::Device, "auto", "auto (CUDA when present), cpu, cuda or cuda:N"));
  k.push_back(key("infer.overlay_bands", V::IntList, Json::array(),
                  "Overlays: the model's input channels drawn as R, G, B (three numbers, e.g. [3, 0, 1] for "
                  "false colour) or as gray (one); empty: channels 0-2, or 0 as gray below 3 channels")
                  .may_be_empty()
                  .range(0, kMaxBands - 1));
  k.push_back(integer("infer.tile.size", 0,
                      "Tiled inference: side of the square tiles cut from each image, in image pixels (0: off, "
                      "else at least 32); tiles keep their native scale (times infer.tile.scale) instead of the "
                      "model's min_size/max_size resize; an image no larger than one tile runs whole as without "
                      "tiling")
                  .at_least(0)
                  .at_most(kMaxImageSide));
  k.push_back(number("infer.tile.overlap", 0.2,
                     "Tiled inference: share of a tile's side its neighbour covers too; an object narrower than "
                     "the overlap lies whole in some tile")
                  .range(0, 0.9));
  k.push_back(boolean("infer.tile.full_image", false,
                      "Tiled inference: also run the whole image at the model's own input size as one more tile "
                      "(large objects), merged with the tiles' detections"));
  k.push_back(number("infer.tile.scale", 1.0,
                     "Tiled inference: factor each tile is resized by before the model (1: native pixels; 0.5: "
                     "tiles of infer.tile.size pixels enter the model at half that side)")
                  .range(0, 8)
                  .above(0));
  k.push_back(number("infer.tile.merge_threshold", 0.5,
                     "Tiled inference: two detections of one class from overlapping tiles are one object when, "
                     "inside the area both tiles cover, the IoU of their masks' parts there reaches this")
                  .range(0, 1)
                  .above(0));

  k.push_back(integer("eval.batch_size", 1, "Images per forward pass").at_least(1).at_most(kMaxBatch));
  k.push_back(key("eval.device", V::Device, "auto", "auto (CUDA when present), cpu, cuda or cuda:N"));
  KeySpec iou_types = key("eval.iou_types", V::ChoiceList, Json::array({"bbox", "segm"}), "COCO metrics mrcnn-eval --config computes (its --iou-type overrides; training's validation computes both)");
  iou_types.choices = {"bbox", "segm"};
  k.push_back(iou_types);
  return k;
}

std::vector<AugmentationSpec> build_augmentations() {
  return {
      {"horizontal_flip", "Mirror image, boxes and masks left-right", {probability("prob", 0.5, "Chance per image")}},
      {"color_jitter",
       "Random brightness, contrast, saturation and hue changes",
       {probability("prob", 1.0, "Chance per image"), probability("brightness", 0.2, "Largest relative change"),
        probability("contrast", 0.2, "Largest relative change"),
        probability("saturation", 0.2, "Largest relative change"),
        number("hue", 0.0, "Largest hue shift, as a share of the full circle").range(0, 0.5)}},
      {"random_crop",
       "Crop a random window that keeps at least one instance whole",
       {probability("prob", 0.5, "Chance per image"),
        number("min_scale", 0.5, "Smallest crop side as a share of the image side").above(0).range(0, 1),
        number("max_scale", 1.0, "Largest crop side as a share of the image side").above(0).range(0, 1),
        probability("min_visible", 0.3,
                    "Instances with less than this share of their mask inside the crop are dropped")}},
  };
}

}  // namespace

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> keys = build_schema();
  return keys;
}

const std::vector<AugmentationSpec>& augmentation_schema() {
  static const std::vector<AugmentationSpec> augmentations = build_augmentations();
  return augmentations;
}

const KeySpec* find_key(const std::string& path) {
  for (const auto& spec : schema())
    if (spec.path == path) return &spec;
  return nullptr;
}

const AugmentationSpec* find_augmentation(const std::string& type) {
  for (const auto& aug : augmentation_schema())
    if (aug.type == type) return &aug;
  return nullptr;
}

bool is_section(const std::string& path) {
  if (path.empty()) return false;
  for (const auto& spec : schema())
    if (spec.path.size() > path.size() && spec.path.compare(0, path.size(), path) == 0 && spec.path[path.size()] == '.')
      return true;
  return false;
}

std::string type_name(ValueType type) {
  switch (type) {
    case ValueType::Int: return "integer";
    case ValueType::Float: return "number";
    case ValueType::Bool: return "boolean";
    case ValueType::String: return "string";
    case ValueType::Path: return "path";
    case ValueType::Device: return "device";
    case ValueType::Choice: return "choice";
    case ValueType::IntList: return "list of integers";
    case ValueType::FloatList: return "list of numbers";
    case ValueType::ChoiceList: return "list of choices";
    case ValueType::IntListList: return "list of lists of integers";
    case ValueType::AugmentationList: return "list of augmentations";
  }
  return "?";
}

namespace {

std::string format_number(double v) {
  // Whole numbers in full (1000000000, not 1e+09).
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string bounds_text(const KeySpec& spec) {
  std::string text;
  if (spec.min) text += std::string(spec.min_exclusive ? " > " : " >= ") + format_number(*spec.min);
  if (spec.max) text += std::string(text.empty() ? " " : " and ") + (spec.max_exclusive ? "< " : "<= ") +
                        format_number(*spec.max);
  return text;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

}  // namespace

std::string describe_limit(const KeySpec& spec) { return spec.limit ? "at most " + format_number(*spec.limit) : ""; }

std::string describe_expected(const KeySpec& spec) {
  const std::string bounds = bounds_text(spec);
  const std::string count = spec.length >= 0           ? std::to_string(spec.length) + " "
                            : !spec.length_key.empty() ? spec.length_key + " "
                                                       : "";
  switch (spec.type) {
    case ValueType::Int: return "an integer" + bounds;
    case ValueType::Float: return "a number" + bounds;
    case ValueType::Bool: return "true or false";
    case ValueType::String: return "a string";
    case ValueType::Path: return "a path (string)";
    case ValueType::Device: return "a device: auto, cpu, cuda or cuda:N";
    case ValueType::Choice: return "one of " + join(spec.choices);
    case ValueType::IntList:
      return std::string(spec.scalar_as_list ? "an integer or " : "") + "a list of " + count + "integers" + bounds;
    case ValueType::FloatList: return "a list of " + count + "numbers" + bounds;
    case ValueType::ChoiceList: return "a non-empty list of distinct values from " + join(spec.choices);
    case ValueType::IntListList: return "a list of non-empty lists of integers" + bounds;
    case ValueType::AugmentationList: {
      std::vector<std::string> types;
      for (const auto& aug : augmentation_schema()) types.push_back(aug.type);
      return "a list of objects {\"type\": " + join(types) + ", <parameters>}";
    }
  }
  return "?";
}

std::string key_reference(bool markdown) {
  std::ostringstream out;
  if (markdown) out << "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& spec : schema()) {
    const std::string limit = describe_limit(spec);
    const std::string expected = describe_expected(spec) + (limit.empty() ? "" : ", " + limit);
    if (markdown)
      out << "| `" << spec.path << "` | " << expected << " | `" << spec.default_value.dump() << "` | " << spec.help
          << " |\n";
    else
      out << spec.path << " = " << spec.default_value.dump() << "\n    " << spec.help << "\n    expects " << expected
          << "\n";
  }
  return out.str();
}

}  // namespace mrcnn::config
