// mrcnn-infer: run a trained Mask R-CNN on images and write COCO results (and overlays).
#include "core/tool.h"
#include "infer/infer_command.h"

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-infer",
                   "Detect and segment objects in images with a Mask R-CNN; writes COCO results JSON (boxes, "
                   "scores, compressed RLE masks as pycocotools encodes them) and, on request, the images with the "
                   "detections drawn. Without --coco, image ids are 1..N in sorted path order and every record "
                   "carries its file_name.",
                   "  mrcnn-infer --config run.json --weights runs/peds/model_final.safetensors \\\n"
                   "      --input photos/ --output results.json --overlay-dir overlays/ --label-map peds.pbtxt\n"
                   "  mrcnn-infer -c configs/maskrcnn_resnet50_fpn_coco.json -w maskrcnn_coco.pth \\\n"
                   "      --coco instances_val2017.json --image-root val2017/ -o dt.json --score-threshold 0\n"
                   "  mrcnn-infer --model runs/peds/model.safetensors -i photos/ -o results.json --overlay-dir ov/\n"
                   "  mrcnn-infer --model runs/fruit/model.safetensors -i drone/ -o dt.json --tile 800 --tile-full-image\n"
                   "  mrcnn-config import-tf pipeline.config --label-map label_map.pbtxt -o tf_model.json\n"
                   "  mrcnn-infer -c tf_model.json -w my_model/checkpoint/ckpt-25 --save-model tf_model.safetensors\n");
  mrcnn::infer::InferCommand command;
  mrcnn::infer::add_infer_options(tool.app(), command);
  return tool.run(argc, argv, [&] { return mrcnn::infer::run_infer_command(command); });
}
