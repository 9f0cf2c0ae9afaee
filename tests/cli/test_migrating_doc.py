"""docs/migrating-from-tf-od-api.md, run as written: its files (pipeline.config, label map) are
taken from the page, TFRecords are written with the `tfrecord` package from a generated shapes
set, a random torchvision maskrcnn_resnet50_fpn stands in for the COCO weights, and every
`mrcnn-*` command of the page runs in order and must succeed."""
import io
import json
import re
import shlex
import shutil

import numpy as np
from PIL import Image

from mrcnn_testing import SOURCE_DIR

DOC = SOURCE_DIR / "docs" / "migrating-from-tf-od-api.md"


def doc_files(text):
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, re.S))


def doc_commands(text):
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        commands += [line for line in block.splitlines() if line.startswith("mrcnn-")]
    return commands


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_records(coco_json, image_dir, paths, keep_classes=(1, 2)):
    from pycocotools.coco import COCO
    from tfrecord.writer import TFRecordWriter

    coco = COCO(str(coco_json))
    ids = sorted(coco.getImgIds())
    shards = [ids[i::len(paths)] for i in range(len(paths))]
    for path, shard in zip(paths, shards):
        writer = TFRecordWriter(str(path))
        for image_id in shard:
            info = coco.loadImgs(image_id)[0]
            anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if a["category_id"] in keep_classes]
            w, h = info["width"], info["height"]
            writer.write({
                "image/height": (h, "int"), "image/width": (w, "int"),
                "image/filename": (info["file_name"].encode(), "byte"),
                "image/source_id": (str(image_id).encode(), "byte"),
                "image/encoded": ((image_dir / info["file_name"]).read_bytes(), "byte"),
                "image/format": (b"png", "byte"),
                "image/object/bbox/xmin": ([a["bbox"][0] / w for a in anns], "float"),
                "image/object/bbox/ymin": ([a["bbox"][1] / h for a in anns], "float"),
                "image/object/bbox/xmax": ([(a["bbox"][0] + a["bbox"][2]) / w for a in anns], "float"),
                "image/object/bbox/ymax": ([(a["bbox"][1] + a["bbox"][3]) / h for a in anns], "float"),
                "image/object/class/label": ([a["category_id"] for a in anns], "int"),
                "image/object/mask": ([png(coco.annToMask(a) * 255) for a in anns], "byte"),
            })
        writer.close()


def test_the_migration_page_runs_as_written(run, workdir, make_shapes):
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    text = DOC.read_text()
    files = doc_files(text)
    assert set(files) == {"pipeline.config", "label_map.pbtxt"}
    for name, content in files.items():
        (workdir / name).write_text(content)
    (workdir / "data").mkdir()
    shutil.copy(workdir / "label_map.pbtxt", workdir / "data" / "label_map.pbtxt")
    make_shapes("shapes", train=6, val=3, size=96)
    write_records(workdir / "shapes" / "train.json", workdir / "shapes" / "train",
                  [workdir / "data" / f"train.record-{i:05d}-of-00002" for i in range(2)])
    write_records(workdir / "shapes" / "val.json", workdir / "shapes" / "val", [workdir / "data" / "val.record"])
    shutil.copytree(workdir / "shapes" / "val", workdir / "photos")
    torch.manual_seed(0)
    coco_like = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    # Real COCO weights come with batch-norm statistics that keep activations in range; give the
    # random stand-in such statistics too (one pass over noise images), or frozen-BN fine-tuning
    # of an untrained ResNet-50 diverges.
    for module in coco_like.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    coco_like.backbone.train()
    with torch.no_grad():
        coco_like.backbone((torch.rand(4, 3, 96, 96) - 0.45) / 0.225)
    torch.save(coco_like.state_dict(), workdir / "maskrcnn_resnet50_fpn_coco.pth")

    commands = doc_commands(text)
    assert [c.split()[0:2] for c in commands][:2] == [["mrcnn-config", "import-tf"], ["mrcnn-config", "set"]]
    outputs = {}
    for command in commands:
        argv = shlex.split(command)
        result = run(*argv)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        outputs[command] = result

    imported = outputs[commands[0]].stderr
    assert "fine_tune_checkpoint = pretrained/model.ckpt" in imported
    pets = json.loads((workdir / "pets.json").read_text())
    assert pets["model"]["num_classes"] == 3 and pets["train"]["steps"] == 6
    assert pets["data"]["train"]["format"] == "tfrecord"
    train_log = next(r.stderr for c, r in outputs.items() if c.startswith("mrcnn-train"))
    assert "re-initialised roi_heads.box_predictor.cls_score.weight" in train_log
    evaluation = next(r.stdout for c, r in outputs.items() if c.startswith("mrcnn-eval"))
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in evaluation
    detections = json.loads((workdir / "detections.json").read_text())
    assert {d["file_name"] for d in detections} <= {str(p.relative_to(workdir)) for p in (workdir / "photos").iterdir()}
    assert len(list((workdir / "overlays").iterdir())) == 3
    assert len(list((workdir / "drawn").iterdir())) == 3
    drawn = np.asarray(Image.open(next((workdir / "drawn").iterdir())))
    assert drawn.shape == (96, 96, 3)
