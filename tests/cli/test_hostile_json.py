"""Hostile JSON through the real tools: nesting 100,000 deep, numbers beyond a double, megabyte
keys, values of the wrong type in configurations and a broken checkpoints/latest.json. Each must
end within seconds in exit 2 and one line "<tool>: error: <message naming the file and key>"."""
import json
import struct

import pytest

from mrcnn_testing import SOURCE_DIR, assert_one_error, run_tool, sample_images

DEEP = "[" * 100000 + "]" * 100000
DEEP_OBJECTS = '{"a":' * 100000 + "1" + "}" * 100000
GT = {"images": [{"id": 1, "height": 40, "width": 60}], "categories": [{"id": 1, "name": "cat"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "area": 200,
                       "iscrowd": 0}]}
DT = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "score": 0.9}]
SMALL_CONFIG = {"model": {"backbone": "resnet18", "num_classes": 3, "min_size": [64], "max_size": 64},
                "infer": {"device": "cpu"}, "eval": {"device": "cpu"}}


def run_refused(cwd, tool, *args):
    """Runs a tool that must refuse its input, quickly: the one error line, here short and alone on stderr."""
    result = run_tool(cwd, tool, *args, timeout=20)
    line = assert_one_error(result, tool)
    assert result.stderr.splitlines() == [line] and len(line) < 400, result.stderr[-2000:]
    return line


def write_header_only_safetensors(path, header_text):
    """A safetensors file whose header is the given text (no tensor data)."""
    data = header_text.encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data)


@pytest.fixture
def config(workdir):
    (workdir / "c.json").write_text(json.dumps(SMALL_CONFIG))
    return "c.json"


# 1. Nesting 100,000 deep: refused at the 257th bracket, before any value is built or printed.

@pytest.mark.parametrize("text, where", [(DEEP, "c.json:1:257"),
                                         ('{"model":\n' + DEEP_OBJECTS + "}", "c.json:2:1276"),
                                         ('{"description": ' + DEEP + "}", "c.json:1:272")])
@pytest.mark.parametrize("command", [["mrcnn-config", "validate", "c.json"], ["mrcnn-config", "show", "c.json"],
                                     ["mrcnn-config", "set", "c.json", "train.steps=5"],
                                     ["mrcnn-train", "--config", "c.json", "--output-dir", "run"]])
def test_deep_config(workdir, text, where, command):
    (workdir / "c.json").write_text(text)
    line = run_refused(workdir, *command)
    assert line.endswith(f"{where}: JSON nested deeper than 256 levels")
    assert not (workdir / "run").exists()


@pytest.mark.parametrize("which", ["gt", "dt"])
def test_deep_coco_files(workdir, which):
    (workdir / "gt.json").write_text(json.dumps(GT))
    (workdir / "dt.json").write_text(json.dumps(DT))
    if which == "gt":
        (workdir / "gt.json").write_text('{"images": [{"id": 1, "segmentation": ' + DEEP + "}]}")
    else:
        (workdir / "dt.json").write_text("[" + DEEP_OBJECTS + "]")
    line = run_refused(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json", "--json", "m.json")
    assert f"{which}.json:1:" in line and "JSON nested deeper than 256 levels" in line
    assert not (workdir / "m.json").exists()


def test_deep_safetensors_header(workdir, config):
    sample_images(workdir / "images", count=1)
    write_header_only_safetensors(workdir / "w.safetensors",
                                  '{"x": {"dtype": "F32", "shape": [' + DEEP + '], "data_offsets": [0, 0]}}')
    line = run_refused(workdir, "mrcnn-infer", "-c", config, "-w", "w.safetensors", "-i", "images", "-o", "dt.json")
    assert "w.safetensors" in line and "nested deeper than 256 levels" in line


# 2. Numbers beyond a double: a parse error at the number, not the JSON library's text.

def test_number_out_of_range_in_config(workdir):
    (workdir / "c.json").write_text('{"train": {\n  "optimizer": {"lr": 1e400}}}')
    for command in (["mrcnn-config", "validate", "c.json"], ["mrcnn-train", "--config", "c.json", "-o", "run"]):
        line = run_refused(workdir, *command)
        assert line.endswith("c.json:2:23: number out of range: 1e400 (beyond a 64-bit float)")


@pytest.mark.parametrize("which", ["gt", "dt"])
def test_number_out_of_range_in_coco_files(workdir, which):
    gt, dt = json.dumps(GT), json.dumps(DT)
    (workdir / "gt.json").write_text(gt.replace('"area": 200', '"area": 2e999') if which == "gt" else gt)
    (workdir / "dt.json").write_text(dt.replace('"score": 0.9', '"score": -1E+400') if which == "dt" else dt)
    line = run_refused(workdir, "mrcnn-eval", "--gt", "gt.json", "--dt", "dt.json")
    assert f"{which}.json:1:" in line and "number out of range" in line


def test_number_out_of_range_in_safetensors_header(workdir, config):
    sample_images(workdir / "images", count=1)
    write_header_only_safetensors(workdir / "w.safetensors",
                                  '{"x": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 0]}}')
    line = run_refused(workdir, "mrcnn-infer", "-c", config, "-w", "w.safetensors", "-i", "images", "-o", "dt.json")
    assert "w.safetensors" in line and "number out of range" in line


# 3. A megabyte unknown key: no did-you-mean search over it, and only a preview in the message.

def test_megabyte_unknown_key_is_quick_and_short(workdir):
    key = "k" * 2_000_000
    (workdir / "c.json").write_text(json.dumps({"model": {key: 1}}))
    line = run_refused(workdir, "mrcnn-config", "validate", "c.json")
    assert line.startswith("mrcnn-config: error: c.json: model.kkkk") and line.endswith("...: unknown key")
    result = run_tool(workdir, "mrcnn-config", "set", "c.json", "model." + "x" * 100000 + "=1", timeout=20)
    assert result.returncode == 2 and len(result.stderr) < 400 and "unknown key" in result.stderr


def test_control_characters_in_keys_and_values_stay_on_one_line(workdir):
    (workdir / "c.json").write_text(json.dumps({"model": {"a\nmrcnn-config: error: b": 1}}))
    line = run_refused(workdir, "mrcnn-config", "validate", "c.json")
    assert line.endswith("c.json: model.a\\nmrcnn-config: error: b: unknown key")
    (workdir / "c.json").write_text(json.dumps({"data": {"augmentation": [{"type": "flip\r\n\u0000"}]}}))
    line = run_refused(workdir, "mrcnn-config", "validate", "c.json")
    assert "unknown augmentation 'flip\\r\\n\\x00'" in line


def test_many_unknown_keys_list_twenty(workdir):
    (workdir / "c.json").write_text(json.dumps({"model": {f"num_clases_{i}": 1 for i in range(300000)}}))
    result = run_tool(workdir, "mrcnn-config", "validate", "c.json", timeout=20)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 21 and all(l.startswith("mrcnn-config: error: c.json: model.num_clases_") for l in lines[:20])
    assert lines[20] == "mrcnn-config: error: c.json: ... and 299980 more problems"


# 5. Values of the wrong type or beyond int64: exit 2 naming the key, in the file and on the command line.

@pytest.mark.parametrize("value", ['"x"', "null", "1e30", "18446744073709551615", "9223372036854775808",
                                   "99999999999999999999999", "[4]", "{}", "true", "-1"])
def test_bad_config_values_name_the_key(workdir, value):
    (workdir / "c.json").write_text('{"train": {"batch_size": ' + value + "}}")
    for command in (["mrcnn-config", "validate", "c.json"], ["mrcnn-config", "show", "c.json"],
                    ["mrcnn-train", "--config", "c.json", "-o", "run"]):
        line = run_refused(workdir, *command)
        assert "c.json: train.batch_size: expected an integer >= 1, found " in line
    assert not (workdir / "run").exists()


@pytest.mark.parametrize("assignment", ["train.batch_size=x", "train.batch_size=null", "train.batch_size=1e30",
                                        "train.batch_size=18446744073709551615", "train.seed=9223372036854775808",
                                        "train.optimizer.lr=1e400", "model.min_size=[1e400]",
                                        "model.min_size=" + "[" * 1000, "model.anchor.sizes=" + DEEP[:60000],
                                        "model={\"num_classes\": 1e400}", "description=\"" + "\\" * 3])
def test_bad_values_on_the_command_line(workdir, config, assignment):
    before = (workdir / config).read_text()
    line = run_refused(workdir, "mrcnn-config", "set", config, assignment)
    assert line.startswith(f"mrcnn-config: error: c.json: {assignment.split('=')[0]}: expected ")
    assert (workdir / config).read_text() == before


# 4. checkpoints/latest.json of another shape: one line naming latest.json and the key.

@pytest.fixture
def run_dir(workdir, make_shapes):
    make_shapes("shapes", train=2, val=1)
    cfg = json.loads((SOURCE_DIR / "configs" / "shapes_tiny_cpu.json").read_text())
    cfg["model"].update({"min_size": [64], "max_size": 64})
    cfg["data"]["train"] = {"format": "coco", "images": "shapes/train", "annotations": "shapes/train.json"}
    cfg["data"]["val"] = {"format": "coco", "images": "", "annotations": ""}
    cfg["train"].update({"steps": 2, "batch_size": 2, "lr_schedule": {"type": "cosine", "warmup_steps": 0,
                                                                      "milestones": []}})
    (workdir / "tiny.json").write_text(json.dumps(cfg))
    (workdir / "run" / "checkpoints").mkdir(parents=True)
    return workdir / "run" / "checkpoints"


@pytest.mark.parametrize("latest, message", [
    ("{}", '"checkpoint" is missing'),
    ("[]", "expected a JSON object, found []"),
    ('"step_00000001"', 'expected a JSON object, found "step_00000001"'),
    ("null", "expected a JSON object, found null"),
    ('{"checkpoint": "step_00000001"}', '"step" is missing'),
    ('{"checkpoint": "step_00000001", "step": "x"}', '"step" must be a step number (an integer >= 0), found "x"'),
    ('{"checkpoint": "step_00000001", "step": -3}', '"step" must be an integer >= 0, found -3'),
    ('{"checkpoint": "step_00000001", "step": 1e400}', "number out of range"),
    ('{"checkpoint": 5, "step": 1}', '"checkpoint" must be the name of a checkpoint'),
    ('{"checkpoint": "../../etc/x", "step": 1}', 'found "../../etc/x"'),
    ('{"checkpoint": "/etc/passwd", "step": 1}', 'found "/etc/passwd"'),
    ('{"checkpoint": "", "step": 1}', '"checkpoint" must be the name of a checkpoint'),
    ('{"checkpoint": [' + DEEP + '], "step": 1}', "JSON nested deeper than 256 levels"),
])
def test_broken_latest_json(workdir, run_dir, latest, message):
    (run_dir / "latest.json").write_text(latest)
    line = run_refused(workdir, "mrcnn-train", "--config", "tiny.json", "--output-dir", "run", "--device", "cpu",
                       "--resume")
    assert "run/checkpoints/latest.json" in line and message in line
    assert sorted(p.name for p in run_dir.iterdir()) == ["latest.json"]
