"""The label formats of annotation tools (data.*.format via, labelme, yolo_seg): hand-made files of
each (the tools' own packages pull in GUI toolkits), read by mrcnn and written back as COCO by
`mrcnn-config export-coco`, compared instance by instance with the masks pycocotools rasterises
from the same polygons; the exported set scored against itself; a few training steps on each
format; every bad input one error line (data.on_invalid fail) or skipped and counted (skip)."""
import base64
import io
import json
import math
import random

import pytest

from mrcnn_testing import assert_one_error, tiff_bytes, write_tiny_shapes_config

np = pytest.importorskip("numpy")
mask_utils = pytest.importorskip("pycocotools.mask")
coco_api = pytest.importorskip("pycocotools.coco")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

SIZE = (80, 64)  # width, height: not square, so that x and y cannot be swapped unnoticed
COLOURS = {"circle": (230, 60, 60), "square": (60, 230, 60), "triangle": (60, 60, 230)}
CLASS_IDS = {"circle": 1, "square": 2, "triangle": 3}  # the names sorted, numbered from 1


def ellipse_polygon(cx, cy, rx, ry, theta=0.0):
    """lib/data/polygon_sets.cpp's ellipse_polygon, written again from its documented rule."""
    n = int(min(max(math.ceil(math.pi * math.sqrt(5 * max(rx, ry))), 16), 4096))
    xy = []
    for k in range(n):
        a = 2 * math.pi * k / n
        u, v = rx * math.cos(a), ry * math.sin(a)
        xy += [cx + u * math.cos(theta) - v * math.sin(theta), cy + u * math.sin(theta) + v * math.cos(theta)]
    return xy


def counts(rle):
    """An RLE's compressed counts as text (pycocotools gives bytes, a JSON file text)."""
    return rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]


def make_objects(rng):
    """One image's objects: a triangle, a rectangle and a circle, as class, kind and parameters."""
    w, h = SIZE
    x, y = rng.uniform(4, 20), rng.uniform(4, 20)
    triangle = [x, y, x + rng.uniform(12, 20), y + rng.uniform(2, 6), x + rng.uniform(2, 8), y + rng.uniform(12, 18)]
    rect = [rng.uniform(40, 50), rng.uniform(4, 14), rng.uniform(10, 20), rng.uniform(10, 16)]
    circle = [rng.uniform(20, 50), rng.uniform(40, 50), rng.uniform(5, 9)]
    return [("triangle", "polygon", [round(v, 2) for v in triangle]), ("square", "rect", [round(v, 2) for v in rect]),
            ("circle", "circle", [round(v, 2) for v in circle])]


def polygon_of(kind, p):
    """The polygon mrcnn should rasterise for a shape, in pixels."""
    if kind == "polygon":
        return list(p)
    if kind == "rect":
        x, y, w, h = p
        return [x, y, x + w, y, x + w, y + h, x, y + h]
    return ellipse_polygon(p[0], p[1], p[2], p[2])


def draw_image(path, objects):
    image = Image.new("RGB", SIZE, (20, 20, 20))
    draw = ImageDraw.Draw(image)
    for cls, kind, p in objects:
        xy = polygon_of(kind, p)
        draw.polygon(list(zip(xy[0::2], xy[1::2])), fill=COLOURS[cls])
    image.save(path)


def make_set(folder, count=6, seed=0):
    """count drawn images in folder; returns {file name: objects}."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(count):
        name = f"img{i}.png"
        truth[name] = make_objects(rng)
        draw_image(folder / name, truth[name])
    return truth


def via_region(cls, kind, p, attribute="class"):
    if kind == "polygon":
        shape = {"name": "polygon", "all_points_x": p[0::2], "all_points_y": p[1::2]}
    elif kind == "rect":
        shape = {"name": "rect", "x": p[0], "y": p[1], "width": p[2], "height": p[3]}
    else:
        shape = {"name": "circle", "cx": p[0], "cy": p[1], "r": p[2]}
    return {"shape_attributes": shape, "region_attributes": {attribute: cls} if attribute else {}}


def write_via(path, truth, images, project=False):
    """A VIA region export (regions as {"0": ...}, the balloon set's layout) or a VIA 2 project."""
    entries = {}
    for name, objects in truth.items():
        size = (images / name).stat().st_size
        regions = [via_region(*o) for o in objects]
        entries[f"{name}{size}"] = {"filename": name, "size": size, "file_attributes": {},
                                    "regions": regions if project else {str(k): r for k, r in enumerate(regions)}}
    doc = {"_via_settings": {}, "_via_img_metadata": entries, "_via_attributes": {}} if project else entries
    path.write_text(json.dumps(doc))


def labelme_shape(cls, kind, p, group_id=None):
    if kind == "polygon":
        points, shape_type = [[p[i], p[i + 1]] for i in range(0, len(p), 2)], "polygon"
    elif kind == "rect":
        points, shape_type = [[p[0], p[1]], [p[0] + p[2], p[1] + p[3]]], "rectangle"
    else:
        points, shape_type = [[p[0], p[1]], [p[0] + p[2], p[1]]], "circle"
    return {"label": cls, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}}


def write_labelme(folder, truth, embed=()):
    """One LabelMe 5 JSON per image next to it; images named in embed carry only imageData."""
    for name, objects in truth.items():
        doc = {"version": "5.2.1", "flags": {}, "shapes": [labelme_shape(*o) for o in objects],
               "imagePath": name, "imageData": None, "imageHeight": SIZE[1], "imageWidth": SIZE[0]}
        if name in embed:
            doc["imageData"] = base64.b64encode((folder / name).read_bytes()).decode()
            doc["imagePath"] = "elsewhere/" + name
            (folder / name).rename(folder / (name + ".moved"))
        (folder / (name[:-4] + ".json")).write_text(json.dumps(doc))


def write_yolo(labels, truth, names_file):
    labels.mkdir(parents=True, exist_ok=True)
    w, h = SIZE
    for name, objects in truth.items():
        lines = []
        for cls, kind, p in objects:
            xy = polygon_of(kind, p)
            coords = " ".join(f"{v / (w if i % 2 == 0 else h):.6f}" for i, v in enumerate(xy))
            lines.append(f"{CLASS_IDS[cls] - 1} {coords}")
        (labels / (name[:-4] + ".txt")).write_text("\n".join(lines) + "\n")
    names_file.write_text("names:\n  0: circle\n  1: square\n  2: triangle\nnc: 3\n")


def yolo_polygon(xy):
    """What mrcnn reads back from the 6-digit normalised text: x * width, y * height."""
    w, h = SIZE
    return [float(f"{v / (w if i % 2 == 0 else h):.6f}") * (w if i % 2 == 0 else h) for i, v in enumerate(xy)]


def config_for(workdir, train_set, steps=2, **data):
    name = write_tiny_shapes_config(workdir, {"steps": steps, "batch_size": 2, "log_period": 1,
                                              "checkpoint_period": 1000, "eval_period": 1000,
                                              "lr_schedule": {"type": "constant", "warmup_steps": 0,
                                                              "milestones": []}})
    cfg = json.loads((workdir / name).read_text())
    cfg["data"]["train"] = train_set
    cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
    cfg["data"].update(data)
    (workdir / "labels.json").write_text(json.dumps(cfg))
    return "labels.json"


def export(run, workdir, config, *extra):
    result = run("mrcnn-config", "export-coco", config, "-o", "exported.json", "--force", *extra)
    assert result.returncode == 0, result.stderr
    return coco_api.COCO(str(workdir / "exported.json")), result.stderr


def assert_same_instances(coco, truth, polygons_of=polygon_of):
    """Every image's annotations, in order, equal pycocotools' masks of the source polygons."""
    w, h = SIZE
    by_name = {img["file_name"]: img for img in coco.dataset["images"]}
    assert sorted(by_name) == sorted(truth)
    for name, objects in truth.items():
        image = by_name[name]
        assert (image["width"], image["height"]) == (w, h)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert [a["category_id"] for a in anns] == [CLASS_IDS[o[0]] for o in objects]
        for ann, (cls, kind, p) in zip(anns, objects):
            expected = mask_utils.merge(mask_utils.frPyObjects([polygons_of(kind, p)], h, w))
            ours = coco.annToRLE(ann)
            assert counts(ours) == counts(expected), (name, cls)
            assert np.array_equal(coco.annToMask(ann), mask_utils.decode(expected))
            assert ann["bbox"] == pytest.approx(list(mask_utils.toBbox(expected)))


@pytest.fixture
def drawn(workdir):
    return make_set(workdir / "images")


def via_set(workdir, drawn, project=False):
    write_via(workdir / "via.json", drawn, workdir / "images", project)
    return {"format": "via", "images": "images", "annotations": "via.json"}


def labelme_set(workdir, drawn, embed=()):
    write_labelme(workdir / "images", drawn, embed)
    return {"format": "labelme", "images": "images", "annotations": "images"}


def yolo_set(workdir, drawn):
    write_yolo(workdir / "labels", drawn, workdir / "data.yaml")
    return {"format": "yolo_seg", "images": "images", "annotations": "labels", "names": "data.yaml"}


@pytest.mark.parametrize("project", [False, True])
def test_via_instances_equal_pycocotools_masks(run, workdir, drawn, project):
    coco, log = export(run, workdir, config_for(workdir, via_set(workdir, drawn, project)))
    assert_same_instances(coco, drawn)
    assert "6 images, 18 instances used" in log
    assert [c["name"] for c in coco.dataset["categories"]] == ["circle", "square", "triangle"]


def test_labelme_instances_equal_pycocotools_masks_and_group_ids_join_polygons(run, workdir, drawn):
    set_ = labelme_set(workdir, drawn)
    # img0: a fourth shape, two triangles of group 7: one instance, the union of both.
    doc = json.loads((workdir / "images" / "img0.json").read_text())
    parts = [[60, 40, 70, 40, 65, 50], [66, 52, 76, 52, 71, 60]]
    doc["shapes"] += [labelme_shape("triangle", "polygon", p, group_id=7) for p in parts]
    (workdir / "images" / "img0.json").write_text(json.dumps(doc))
    coco, _ = export(run, workdir, config_for(workdir, set_))
    truth = dict(drawn)
    truth["img0.png"] = drawn["img0.png"] + [("triangle", "group", parts)]
    def polygons(kind, p):
        return p if kind == "group" else polygon_of(kind, p)
    w, h = SIZE
    def assert_group(kind, p, ann):
        expected = mask_utils.merge(mask_utils.frPyObjects(polygons(kind, p), h, w))
        assert counts(coco.annToRLE(ann)) == counts(expected)
    image = next(i for i in coco.dataset["images"] if i["file_name"] == "img0.png")
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    assert len(anns) == 4
    assert_group("group", parts, anns[3])
    del truth["img0.png"]
    coco.dataset["images"] = [i for i in coco.dataset["images"] if i["file_name"] != "img0.png"]
    assert_same_instances(coco, truth)


def test_labelme_embedded_image_data_trains(run, workdir, drawn):
    config = config_for(workdir, labelme_set(workdir, drawn, embed=("img1.png", "img2.png")))
    coco, _ = export(run, workdir, config)
    assert sum(i["file_name"].endswith(".json") for i in coco.dataset["images"]) == 2
    result = run("mrcnn-train", "--config", config, "--output-dir", "run")
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stderr  # the embedded images decoded
    assert len((workdir / "run" / "metrics.jsonl").read_text().splitlines()) >= 2
    # Inference over the set reads the embedded images too, under the ids export-coco gave them.
    result = run("mrcnn-infer", "--config", config, "--weights", "run/model.safetensors", "--dataset", "train",
                 "-o", "dt.json", "--score-threshold", "0", "--on-error", "fail")
    assert result.returncode == 0, result.stderr
    ids = {r["image_id"] for r in json.loads((workdir / "dt.json").read_text())}
    embedded = {i["id"] for i in coco.dataset["images"] if i["file_name"].endswith(".json")}
    assert embedded <= ids, (embedded, ids)


def test_yolo_instances_equal_pycocotools_masks(run, workdir, drawn):
    coco, log = export(run, workdir, config_for(workdir, yolo_set(workdir, drawn)))
    assert_same_instances(coco, drawn, lambda kind, p: yolo_polygon(polygon_of(kind, p)))
    assert [c["name"] for c in coco.dataset["categories"]] == ["circle", "square", "triangle"]


@pytest.mark.parametrize("names", ["names: [circle, square, 'triangle']\n",
                                   "path: .\nnames:\n  - circle\n  - square\n  - triangle\nnc: 3\n",
                                   "names: {0: circle, 1: square, 2: triangle}\n"])
def test_yolo_names_in_each_data_yaml_form(run, workdir, drawn, names):
    set_ = yolo_set(workdir, drawn)
    (workdir / "data.yaml").write_text(names)
    coco, _ = export(run, workdir, config_for(workdir, set_))
    assert [c["name"] for c in coco.dataset["categories"]] == ["circle", "square", "triangle"]


def test_yolo_names_as_a_text_file(run, workdir, drawn):
    set_ = yolo_set(workdir, drawn)
    (workdir / "names.txt").write_text("circle\nsquare\ntriangle\n")
    set_["names"] = "names.txt"
    coco, _ = export(run, workdir, config_for(workdir, set_))
    assert [c["name"] for c in coco.dataset["categories"]] == ["circle", "square", "triangle"]


@pytest.mark.parametrize("make", [via_set, labelme_set, yolo_set])
def test_exported_set_scores_ap_1_against_itself(run, workdir, drawn, make):
    export(run, workdir, config_for(workdir, make(workdir, drawn)))
    gt = json.loads((workdir / "exported.json").read_text())
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                "segmentation": a["segmentation"], "score": 1.0} for a in gt["annotations"]]
    (workdir / "results.json").write_text(json.dumps(results))
    result = run("mrcnn-eval", "--gt", "exported.json", "--dt", "results.json", "--json", "metrics.json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["bbox"]["AP"] == pytest.approx(1.0) and metrics["segm"]["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("make", [via_set, labelme_set, yolo_set])
def test_a_few_training_steps_on_each_format(run, workdir, drawn, make):
    config = config_for(workdir, make(workdir, drawn))
    result = run("mrcnn-train", "--config", config, "--output-dir", "run")
    assert result.returncode == 0, result.stderr
    assert "6 images, 18 instances used" in result.stderr and "skipped" not in result.stderr
    steps = [json.loads(l) for l in (workdir / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "loss" in s][-1] == 2
    assert all(math.isfinite(s["loss"]) for s in steps if "loss" in s)


def test_via_one_class_set_needs_no_class_attribute(run, workdir, drawn):
    """The balloon set's regions have no attributes: with one class every region is that class."""
    entries = {}
    for name, objects in drawn.items():
        entries[name] = {"filename": name, "size": 1, "regions": [via_region(*o, attribute=None) for o in objects]}
    (workdir / "via.json").write_text(json.dumps(entries))
    cfg = json.loads((workdir / config_for(workdir, {"format": "via", "images": "images",
                                                     "annotations": "via.json"})).read_text())
    cfg["model"]["num_classes"] = 2
    (workdir / "one.json").write_text(json.dumps(cfg))
    coco, _ = export(run, workdir, "one.json")
    assert {a["category_id"] for a in coco.dataset["annotations"]} == {1}
    assert len(coco.dataset["annotations"]) == 18
    # With more classes a region without the attribute is invalid.
    result = run("mrcnn-config", "export-coco", config_for(workdir, {"format": "via", "images": "images",
                                                                     "annotations": "via.json"},
                                                           on_invalid="fail"), "-o", "x.json")
    assert_one_error(result, "mrcnn-config", "region 0", "no region attribute 'class'")


def test_via_class_attribute_and_ellipse(run, workdir, drawn):
    regions = [{"shape_attributes": {"name": "ellipse", "cx": 40, "cy": 30, "rx": 20, "ry": 9, "theta": 0.5},
                "region_attributes": {"kind": {"circle": True}}}]
    (workdir / "via.json").write_text(json.dumps({"a": {"filename": "img0.png", "size": 1, "regions": regions}}))
    set_ = {"format": "via", "images": "images", "annotations": "via.json", "class_attribute": "kind",
            "label_map": "labels.pbtxt"}
    (workdir / "labels.pbtxt").write_text("item { id: 2 name: 'circle' }\n")
    coco, _ = export(run, workdir, config_for(workdir, set_))
    ann = coco.dataset["annotations"][0]
    w, h = SIZE
    expected = mask_utils.frPyObjects([ellipse_polygon(40, 30, 20, 9, 0.5)], h, w)[0]
    assert ann["category_id"] == 2 and counts(coco.annToRLE(ann)) == counts(expected)


# Bad inputs: (make the set, break it, the error's fragments).
def break_via(workdir, field, value, region=0):
    doc = json.loads((workdir / "via.json").read_text())
    first = doc[sorted(doc)[0]]
    first["regions"][str(region)]["shape_attributes"][field] = value
    (workdir / "via.json").write_text(json.dumps(doc))


def break_labelme(workdir, shape):
    doc = json.loads((workdir / "images" / "img0.json").read_text())
    doc["shapes"][0].update(shape)
    (workdir / "images" / "img0.json").write_text(json.dumps(doc))


def break_yolo(workdir, line):
    path = workdir / "labels" / "img0.txt"
    path.write_text(line + "\n" + path.read_text())


BAD_ANNOTATIONS = [
    (via_set, lambda w: break_via(w, "all_points_x", [1, 2]), ["region 0", "differ in length"]),
    (via_set, lambda w: (break_via(w, "all_points_x", [1, 2]), break_via(w, "all_points_y", [1, 2])),
     ["region 0", "at least 3 points"]),
    (via_set, lambda w: break_via(w, "all_points_x", [1, 2, 1e300]), ["region 0", "outside the 80x64 image"]),
    (via_set, lambda w: break_via(w, "all_points_x", [1, 2, 200]), ["region 0", "point 2", "outside"]),
    (via_set, lambda w: break_via(w, "all_points_x", "abc"), ["region 0", "all_points_x", "list of numbers"]),
    (via_set, lambda w: break_via(w, "name", "point"), ["region 0", "'point' is not an area"]),
    (labelme_set, lambda w: break_labelme(w, {"shape_type": "line"}), ["img0.json shape 0", "'line' is not an area"]),
    (labelme_set, lambda w: break_labelme(w, {"points": [[1, 1], [2, 2]]}), ["img0.json shape 0", "3 points"]),
    (labelme_set, lambda w: break_labelme(w, {"points": [[1, "x"]]}), ["img0.json shape 0", "[x, y] numbers"]),
    (labelme_set, lambda w: break_labelme(w, {"label": 5}), ["img0.json shape 0", "'label' must be a string"]),
    (yolo_set, lambda w: break_yolo(w, "0 0.1 0.1 0.2 0.2"), ["img0.txt:1", "at least 3 points"]),
    (yolo_set, lambda w: break_yolo(w, "0 0.1 0.1 0.2 0.2 nan 0.3"), ["img0.txt:1", "'nan' is not a number"]),
    (yolo_set, lambda w: break_yolo(w, "0 0.1 0.1 0.2 0.2 1e999 0.3"), ["img0.txt:1", "'1e999' is not a number"]),
    (yolo_set, lambda w: break_yolo(w, "0 0.1 0.1 0.2 0.2 3.5 0.3"), ["img0.txt:1", "outside the 80x64 image"]),
    (yolo_set, lambda w: break_yolo(w, "7 0.1 0.1 0.2 0.2 0.3 0.3"), ["img0.txt:1", "class index 7", "3 names"]),
    (yolo_set, lambda w: break_yolo(w, "-1 0.1 0.1 0.2 0.2 0.3 0.3"), ["img0.txt:1", "'-1' is not a whole number"]),
    (yolo_set, lambda w: break_yolo(w, "0 0.1 0.1 0.2 0.2 0.3"), ["img0.txt:1", "odd count"]),
]


@pytest.mark.parametrize("make,breaks,fragments", BAD_ANNOTATIONS)
def test_a_bad_annotation_is_one_error_or_skipped_and_counted(run, workdir, drawn, make, breaks, fragments):
    set_ = make(workdir, drawn)
    breaks(workdir)
    result = run("mrcnn-config", "export-coco", config_for(workdir, set_, on_invalid="fail"), "-o", "x.json")
    assert_one_error(result, "mrcnn-config", *fragments, "data.on_invalid is fail")
    coco, log = export(run, workdir, config_for(workdir, set_))
    assert "skipped 0 images and 1 annotations" in log and fragments[0] in log
    assert len(coco.dataset["annotations"]) == 17 + (set_["format"] == "yolo_seg" and "0.3 0.3" not in str(fragments))


def test_more_class_names_than_classes_is_one_error(run, workdir, drawn):
    set_ = labelme_set(workdir, drawn)
    break_labelme(workdir, {"label": "dog"})
    assert_one_error(run("mrcnn-config", "export-coco", config_for(workdir, set_), "-o", "x.json"), "mrcnn-config",
                     "4 class names (circle, dog, square, triangle) for model.num_classes 4", "data.*.label_map")


def test_unknown_class_in_a_label_map_is_reported(run, workdir, drawn):
    set_ = via_set(workdir, drawn)
    (workdir / "labels.pbtxt").write_text("item { id: 1 name: 'circle' }\nitem { id: 2 name: 'square' }\n")
    set_["label_map"] = "labels.pbtxt"
    result = run("mrcnn-config", "export-coco", config_for(workdir, set_, on_invalid="fail"), "-o", "x.json")
    assert_one_error(result, "mrcnn-config", "region 0", "class 'triangle' is not in the label map")


def giant(path):
    """A sparse file past the label files' 64 MiB limit (no disk used)."""
    with open(path, "wb") as f:
        f.truncate(65 << 20)


BAD_FILES = [
    (labelme_set, lambda w: giant(w / "images" / "img3.json"), ["img3.json", "larger than the limit"]),
    (yolo_set, lambda w: giant(w / "labels" / "img3.txt"), ["img3.txt", "larger than the limit"]),
    (via_set, lambda w: (w / "images" / "img3.png").unlink(), ["img3.png", "cannot read the image"]),
    (labelme_set, lambda w: (w / "images" / "img3.png").unlink(), ["img3.json", "no image"]),
    (labelme_set, lambda w: (w / "images" / "img3.json").write_text("{\"shapes\": [}"), ["img3.json:1:"]),
    (labelme_set, lambda w: (w / "images" / "img3.json").write_text("[" * 5000 + "]" * 5000),
     ["img3.json", "deeper than 256"]),
    (yolo_set, lambda w: (w / "labels" / "orphan.txt").write_text("0 0.1 0.1 0.2 0.2 0.3 0.3\n"),
     ["orphan.txt", "label file without an image"]),
]


@pytest.mark.parametrize("make,breaks,fragments", BAD_FILES)
def test_a_bad_image_or_label_file_is_one_error_or_skipped_and_counted(run, workdir, drawn, make, breaks, fragments):
    set_ = make(workdir, drawn)
    breaks(workdir)
    result = run("mrcnn-config", "export-coco", config_for(workdir, set_, on_invalid="fail"), "-o", "x.json")
    assert_one_error(result, "mrcnn-config", *fragments)
    coco, log = export(run, workdir, config_for(workdir, set_))
    assert "skipped 1 images and 0 annotations" in log and fragments[0] in log


@pytest.mark.parametrize("content,fragments", [
    ("{\"a\": ", ["via.json:1:"]),
    ("[" * 5000 + "]" * 5000, ["via.json", "deeper than 256"]),
    ("{\"a\": {\"filename\": \"img0.png\", \"regions\": [{\"shape_attributes\": "
     "{\"name\": \"circle\", \"cx\": 1, \"cy\": 1, \"r\": 1e999}}]}}", ["via.json"]),
    ("[1, 2]", ["via.json", "not a VIA project"]),
    (None, ["via.json", "larger than the limit"]),
])
def test_a_malformed_via_file_is_one_error_whatever_the_policy(run, workdir, drawn, content, fragments):
    if content is None:
        giant(workdir / "via.json")
    else:
        (workdir / "via.json").write_text(content)
    set_ = {"format": "via", "images": "images", "annotations": "via.json"}
    assert_one_error(run("mrcnn-config", "export-coco", config_for(workdir, set_), "-o", "x.json"),
                     "mrcnn-config", *fragments)


def test_yolo_image_without_labels_is_a_negative(run, workdir, drawn):
    set_ = yolo_set(workdir, drawn)
    (workdir / "labels" / "img2.txt").unlink()
    coco, log = export(run, workdir, config_for(workdir, set_))
    assert "6 images, 15 instances used, 1 without objects" in log
    coco, log = export(run, workdir, config_for(workdir, set_, keep_empty_images=False))
    assert "5 images, 15 instances used, 1 without objects left out" in log
    assert "img2.png" not in [i["file_name"] for i in coco.dataset["images"]]


def test_export_coco_refuses_an_existing_file_and_a_missing_set(run, workdir, drawn):
    config = config_for(workdir, via_set(workdir, drawn))
    (workdir / "taken.json").write_text("{}")
    assert_one_error(run("mrcnn-config", "export-coco", config, "-o", "taken.json"), "mrcnn-config",
                     "taken.json", "already exists")
    assert_one_error(run("mrcnn-config", "export-coco", config, "--set", "val", "-o", "v.json"), "mrcnn-config",
                     "data.val.annotations is empty")


def test_a_large_five_band_tiff_with_its_directory_last_is_read(run, workdir):
    """libtiff, GDAL and Pillow write the image directory after the pixels: beyond the header
    bytes read first, a 5-band TIFF (which OpenCV cannot decode) must still give its size."""
    (workdir / "images").mkdir()
    (workdir / "labels").mkdir()
    bands = np.zeros((500, 520, 5), dtype=np.uint8)  # 1.3 MB of pixels before the directory
    (workdir / "images" / "a.tif").write_bytes(tiff_bytes(bands))
    (workdir / "labels" / "a.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.6\n")
    (workdir / "names.txt").write_text("circle\n")
    set_ = {"format": "yolo_seg", "images": "images", "annotations": "labels", "names": "names.txt"}
    coco, log = export(run, workdir, config_for(workdir, set_))
    assert [(i["file_name"], i["width"], i["height"]) for i in coco.dataset["images"]] == [("a.tif", 520, 500)]
    assert len(coco.dataset["annotations"]) == 1


def split_into_band_files(folder):
    """Each PNG in folder replaced by <stem>_B1.png .. _B3.png, one gray file a colour band."""
    from PIL import Image

    for png in sorted(folder.glob("*.png")):
        rgb = np.asarray(Image.open(png).convert("RGB"))
        for k in range(3):
            Image.fromarray(rgb[:, :, k]).save(folder / f"{png.stem}_B{k + 1}.png")
        png.unlink()


def test_via_and_labelme_sets_of_band_files_read_and_train(run, workdir, drawn):
    via = via_set(workdir, drawn)
    labelme = labelme_set(workdir, drawn)
    split_into_band_files(workdir / "images")
    bands = {"bands": [1, 2, 3], "band_files": "{stem}_B{band}.png"}
    for set_ in (via, labelme):
        config = config_for(workdir, {**set_, **bands})
        coco, _ = export(run, workdir, config)
        assert_same_instances(coco, drawn)
        result = run("mrcnn-train", "--config", config, "--output-dir", f"run-{set_['format']}")
        assert result.returncode == 0, result.stderr
    config = config_for(workdir, {**yolo_set(workdir, drawn), **bands})
    assert_one_error(run("mrcnn-config", "validate", config), "mrcnn-config", "data.train.band_files",
                     "yolo_seg set")
