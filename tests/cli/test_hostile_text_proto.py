"""Hostile protobuf text format and label maps through the real tools: pipeline.config files nested
100,000 deep, with 300,000 unknown fields, fields of the wrong type, strings that are not UTF-8,
numbers beyond a double or an int; label maps (pbtxt and JSON) nested deep, with huge, negative or
repeated ids, missing names and a million items. Each must end within seconds: refused with exit 2
and one line "<tool>: error: <message naming the file and the field>", or accepted."""
import json
import time

import pytest

from mrcnn_testing import assert_one_error, run_tool, sample_images

MASK_RCNN = "model { faster_rcnn { num_classes: 3 %s } }\n"
READER = "train_input_reader { tf_record_input_reader { input_path: 'train.record' } label_map_path: 'x.pbtxt' }\n"
SMALL_CONFIG = {"model": {"backbone": "resnet18", "num_classes": 3, "min_size": [64], "max_size": 64},
                "infer": {"device": "cpu"}}


def run_refused(cwd, tool, *args):
    """Runs a tool on input it must refuse, quickly: the one error line, here short and alone on stderr."""
    result = run_tool(cwd, tool, *args, timeout=20)
    line = assert_one_error(result, tool)
    assert result.stderr.splitlines() == [line] and len(line) < 400, result.stderr[-2000:]
    return line


def import_tf(workdir, text, *extra):
    """import-tf of a pipeline.config written as bytes (str is UTF-8 encoded)."""
    (workdir / "pipeline.config").write_bytes(text if isinstance(text, bytes) else text.encode())
    return ["mrcnn-config", "import-tf", "pipeline.config", "-o", "imported.json", *extra]


# 1. Nesting: refused at the 257th level, with file:line:column, before any deep tree is built.

@pytest.mark.parametrize("text, where", [
    ("a {" * 100000 + "}" * 100000, "pipeline.config:1:771: a: messages nested deeper than 256 levels"),
    ("model <\n" + "x < " * 100000, "pipeline.config:2:1023: x: messages nested deeper than 256 levels"),
    ("l: [" + "{ l: [" * 100000, "pipeline.config:1:1541: l: messages nested deeper than 256 levels"),
])
def test_deep_pipeline(workdir, text, where):
    line = run_refused(workdir, *import_tf(workdir, text))
    assert line.endswith(where)
    assert not (workdir / "imported.json").exists()


def test_nesting_at_the_limit_is_read(workdir):
    text = MASK_RCNN % ("n {" * 254 + "}" * 254)
    result = run_tool(workdir, *import_tf(workdir, text), timeout=20)
    assert result.returncode == 0, result.stderr
    assert "model.faster_rcnn.n.n.n" in result.stderr and "not mapped" in result.stderr


# 2. Many unknown fields: linear, and the warnings are bounded.

@pytest.mark.parametrize("fields", [
    "".join(f"unknown_{i}: {i}\n" for i in range(300000)),
    "".join(f"block_{i} {{ value: {i} }}\n" for i in range(300000)),
    "same: 1\n" * 300000,
])
def test_300k_unknown_fields_finish_quickly(workdir, fields):
    start = time.monotonic()
    result = run_tool(workdir, *import_tf(workdir, MASK_RCNN % "" + fields), timeout=20)
    assert time.monotonic() - start < 10, "a hang check, not a benchmark"
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [l for l in result.stderr.splitlines() if "warning" in l]
    assert len(warnings) <= 101 and max(len(l) for l in warnings) < 500
    if len(warnings) == 101:
        assert "... and 299900 more fields not carried over (-v lists them)" in warnings[-1]
    assert json.loads((workdir / "imported.json").read_text())["model"]["num_classes"] == 4


def test_long_names_and_paths_are_bounded(workdir):
    # One long name over 250 levels above 200,000 fields would make gigabytes of field paths.
    text = MASK_RCNN % ("".join(f"{'a' * 4000} {{ " for _ in range(250)) +
                        "".join(f"b{i}: 1 " for i in range(200000)) + "}" * 250)
    line = run_refused(workdir, *import_tf(workdir, text))
    assert "pipeline.config: more than 64 MB of field paths" in line and "not a pipeline.config" in line


# 3. Fields of the wrong type: the file, the field path, what was expected and what was found.

GRID = "first_stage_anchor_generator { grid_anchor_generator { %s } }"


@pytest.mark.parametrize("fields, message", [
    ("feature_extractor { type: 5 }", "model.faster_rcnn.feature_extractor.type: expected a string, found 5"),
    (GRID % 'aspect_ratios: "x"', "grid_anchor_generator.aspect_ratios: expected positive numbers (width / height), "
                                  'found "x"'),
    (GRID % 'aspect_ratios: ["x"]', 'grid_anchor_generator.aspect_ratios: expected positive numbers (width / height), '
                                    'found "x"'),
    (GRID % "aspect_ratios: [0.5, 0]", "grid_anchor_generator.aspect_ratios: expected positive numbers"),
    (GRID % "scales: [1, 2, 3, 4, SOFTMAX]",
     'grid_anchor_generator.scales: expected positive numbers, found "SOFTMAX"'),
    ("first_stage_nms_iou_threshold: 'x'", 'model.faster_rcnn.first_stage_nms_iou_threshold: expected a number, '
                                           'found "x"'),
    ("image_resizer { keep_aspect_ratio_resizer { min_dimension { a: 1 } } }",
     "keep_aspect_ratio_resizer.min_dimension: expected an integer (32-bit), found a message { ... }"),
    ("second_stage_batch_size {}", "model.faster_rcnn.second_stage_batch_size: expected an integer (32-bit), found an "
                                   "empty message {}"),
    ("first_stage_max_proposals: 2.5", "model.faster_rcnn.first_stage_max_proposals: expected an integer (32-bit), "
                                       "found 2.5"),
    ("first_stage_max_proposals: 9999999999", "first_stage_max_proposals: expected an integer (32-bit), found "
                                              "9999999999"),
    ("first_stage_max_proposals: 99999999999999999999", "first_stage_max_proposals: expected an integer (32-bit), "
                                                        "found 1e+20"),
])
def test_wrong_types(workdir, fields, message):
    line = run_refused(workdir, *import_tf(workdir, MASK_RCNN % fields))
    assert line.startswith("mrcnn-config: error: pipeline.config: ") and message in line


@pytest.mark.parametrize("text, message", [
    ("model { faster_rcnn { num_classes: 3 } }\ntrain_config { fine_tune_checkpoint: 7 }",
     "train_config.fine_tune_checkpoint: expected a string, found 7"),
    ("model { faster_rcnn { num_classes: 3 } }\ntrain_config { batch_size: '4' }",
     'train_config.batch_size: expected an integer (32-bit), found "4"'),
    ("model { faster_rcnn { num_classes: 3 } }\ntrain_config { optimizer { use_moving_average: 3 } }",
     "train_config.optimizer.use_moving_average: expected true or false, found 3"),
    ("model { faster_rcnn { num_classes: 3 } }\n"
     "train_config { data_augmentation_options { random_crop_image { min_area: -1 } } }",
     "random_crop_image.min_area: expected a number from 0 to 1, found -1.0"),
    ("model { faster_rcnn { num_classes: 3 } }\ntrain_input_reader { tf_record_input_reader { input_path: [] } }",
     "train_input_reader.tf_record_input_reader.input_path: expected at least one string, found []"),
    ("model { faster_rcnn { num_classes: 3 } }\ntrain_input_reader { label_map_path: 5 }",
     "train_input_reader.label_map_path: expected a string, found 5"),
])
def test_wrong_types_outside_the_model(workdir, text, message):
    line = run_refused(workdir, *import_tf(workdir, text))
    assert line.startswith("mrcnn-config: error: pipeline.config: ") and message in line


@pytest.mark.parametrize("text, message", [
    (b"model { faster_rcnn { num_classes: 3 feature_extractor { type: '\xff' } } }",
     "pipeline.config:1:65: not UTF-8 text (byte 0xFF)"),
    (b"model { faster_rcnn { num_classes: 3 feature_extractor { type: '\\xff' } } }",
     "pipeline.config:1:70: type: the string is not UTF-8 text (byte 0xFF at offset 0 of its value)"),
    (b"model { faster_rcnn { num_classes: 3 feature_extractor { type: '\\q' } } }",
     "pipeline.config:1:66: type: unknown escape \\q in a string"),
    (b"model { faster_rcnn { num_classes: 3 feature_extractor { type: '\\ud800' } } }",
     "type: \\u escape of 55296 is not a Unicode character"),
    (b"model { faster_rcnn { num_classes: 3 feature_extractor { type: '\\u12' } } }", "type: \\u needs 4 hex digits"),
    (b"model { faster_rcnn { num_classes: 1e400 } }",
     "pipeline.config:1:36: num_classes: 1e400 is out of the range of a number (a double)"),
    (b"model { faster_rcnn { num_classes: -1e400 } }",
     "pipeline.config:1:36: num_classes: -1e400 is out of the range of a number (a double)"),
])
def test_strings_and_numbers_the_parser_refuses(workdir, text, message):
    line = run_refused(workdir, *import_tf(workdir, text))
    assert line.endswith(message)


def test_escapes_are_decoded(workdir):
    text = MASK_RCNN % r"feature_extractor { type: '\u0072es\x6e\145t50_\U0001F600' }"
    result = run_tool(workdir, *import_tf(workdir, text), timeout=20)
    assert result.returncode == 0, result.stderr
    assert json.loads((workdir / "imported.json").read_text(encoding="utf-8"))["model"]["backbone"] == "resnet50"


# 4. --label-map is read, checked and carried into the configuration.

def test_label_map_is_carried_and_checked_against_num_classes(workdir):
    (workdir / "labels.pbtxt").write_text("item { id: 0 name: 'background' }\nitem { id: 1 name: 'a' }\n"
                                          "item { id: 3 display_name: 'c' }\n")
    cmd = import_tf(workdir, MASK_RCNN % "" + READER, "--label-map", "labels.pbtxt")
    result = run_tool(workdir, *cmd, timeout=20)
    assert result.returncode == 0, result.stderr
    assert json.loads((workdir / "imported.json").read_text())["data"]["train"]["label_map"] == "labels.pbtxt"

    (workdir / "imported.json").unlink()
    (workdir / "labels.pbtxt").write_text("item { id: 1 name: 'a' }\nitem { id: 4 name: 'd' }\n")
    line = run_refused(workdir, *cmd)
    assert line.endswith("labels.pbtxt: class id 4 (d) is larger than pipeline.config's "
                         "model.faster_rcnn.num_classes = 3 (TF counts no background)")
    assert not (workdir / "imported.json").exists()


def test_label_map_without_reader_or_num_classes(workdir):
    (workdir / "labels.json").write_text(json.dumps({"1": "cat", "5": "dog"}))
    cmd = import_tf(workdir, "model { faster_rcnn { } }\n", "--label-map", "labels.json")
    result = run_tool(workdir, *cmd, timeout=20)
    assert result.returncode == 0, result.stderr
    cfg = json.loads((workdir / "imported.json").read_text())
    assert cfg["model"]["num_classes"] == 6 and cfg["data"]["train"]["label_map"] == "labels.json"


def test_pipeline_label_map_path_is_checked_where_it_exists(workdir):
    (workdir / "x.pbtxt").write_text("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }\n")
    line = run_refused(workdir, *import_tf(workdir, MASK_RCNN % "" + READER))
    assert line == "mrcnn-config: error: x.pbtxt:2: id 1 appears twice"


# 5. Hostile label maps: a clean error through import-tf and mrcnn-infer, or accepted quickly.

HOSTILE_LABEL_MAPS = [
    ("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }", "labels.pbtxt:2: id 1 appears twice"),
    ("item { id: -1 name: 'a' }", "labels.pbtxt:1: id -1: out of range (label map ids are integers from 1 to "
                                  "2147483647, 0 for the background)"),
    ("item { id: 99999999999999999999 name: 'a' }", "labels.pbtxt:1: id 99999999999999999999: out of range"),
    ("item { id: 2147483648 name: 'a' }", "labels.pbtxt:1: id 2147483648: out of range"),
    ("item { id: 0 name: 'cat' }", "labels.pbtxt:1: id 0 is reserved for the background (name: 'background')"),
    ("item {\n id: 1\n}", "labels.pbtxt:3: id 1: no name (expected name: '...' or display_name: '...')"),
    ("item { name: 'a' }", "labels.pbtxt:1: item without an id"),
    ("item { id: '1' name: 'a' }", "labels.pbtxt:1: id: expected an integer, found '1'"),
    ("item { id: 1 name: '\\xff' }", "labels.pbtxt:1: the string is not UTF-8 text (byte 0xFF at offset 0"),
    ("item { id: 1 name: 'a' k " + "{ k " * 100000, "labels.pbtxt:1: missing '}'"),
    ('[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]', "labels.pbtxt: item 1: id 1 appears twice"),
    ('[{"id": -3, "name": "a"}]', "labels.pbtxt: item 0: id -3: out of range"),
    ('[{"id": 1}]', 'labels.pbtxt: item 0: expected {"id": integer, "name": string}'),
    ('[{"id": 1, "name": "a", "display_name": 5}]', 'labels.pbtxt: item 0: expected {"id": integer, "name": string}'),
    ('{"1": "a", "01": "b"}', "labels.pbtxt: id 1 appears twice"),
    ('{"99999999999999999999": "a"}', "labels.pbtxt: key '99999999999999999999': expected a class id"),
    ('{"1": 5}', "labels.pbtxt: class 1: expected a name (string)"),
    ("[" * 100000 + "]" * 100000, "labels.pbtxt:1:"),
    ("", "labels.pbtxt: no items"),
]


@pytest.mark.parametrize("text, message", HOSTILE_LABEL_MAPS)
def test_hostile_label_map_in_import_tf(workdir, text, message):
    (workdir / "labels.pbtxt").write_text(text)
    line = run_refused(workdir, *import_tf(workdir, MASK_RCNN % "" + READER, "--label-map", "labels.pbtxt"))
    assert message in line
    assert not (workdir / "imported.json").exists()


@pytest.mark.parametrize("text, message", HOSTILE_LABEL_MAPS[:3] + HOSTILE_LABEL_MAPS[9:11])
def test_hostile_label_map_in_mrcnn_infer(workdir, text, message):
    (workdir / "c.json").write_text(json.dumps(SMALL_CONFIG))
    sample_images(workdir / "images", count=1)
    (workdir / "labels.pbtxt").write_text(text)
    line = run_refused(workdir, "mrcnn-infer", "-c", "c.json", "-w", "w.safetensors", "-i", "images", "-o", "dt.json",
                       "--label-map", "labels.pbtxt")
    assert message in line


@pytest.mark.parametrize("text", [
    "item { id: 1 name: 'a' k " + "{ k " * 100000 + "}" * 100000 + "}",  # nested fields are skipped, not recursed
    "".join(f"item {{ id: {i} name: 'class {i}' }}\n" for i in range(1, 1000001)),
    json.dumps({str(i): f"class {i}" for i in range(1, 1000001)}),
    json.dumps([{"id": i, "name": f"class {i}"} for i in range(1, 1000001)]),
])
def test_deep_or_large_label_maps_are_read_quickly(workdir, text):
    (workdir / "labels.pbtxt").write_text(text)
    cmd = import_tf(workdir, "model { faster_rcnn { } }\n", "--label-map", "labels.pbtxt")
    start = time.monotonic()
    result = run_tool(workdir, *cmd, timeout=20)
    assert time.monotonic() - start < 10, "a hang check, not a benchmark"
    assert result.returncode == 0, result.stderr[-2000:]
    largest = 1 if text.startswith("item { id: 1 name: 'a' k") else 1000000
    assert json.loads((workdir / "imported.json").read_text())["model"]["num_classes"] == largest + 1
