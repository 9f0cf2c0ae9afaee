"""mrcnn-config, run for real: every subcommand, and the bad inputs users will give it."""
import json
import os

import pytest

from mrcnn_testing import SOURCE_DIR

PRESETS = sorted(p.stem for p in (SOURCE_DIR / "configs").glob("*.json"))


def read(path):
    return json.loads(path.read_text())


# --- list-presets / init ---------------------------------------------------------------------

def test_list_presets_lists_every_shipped_file(run):
    result = run("mrcnn-config", "list-presets")
    assert result.returncode == 0
    listed = [l for l in result.stdout.splitlines() if l and not l.startswith(" ")]
    assert listed == PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_init_writes_the_preset_file(run, workdir, preset):
    result = run("mrcnn-config", "init", "--preset", preset, "-o", "c.json")
    assert result.returncode == 0, result.stderr
    assert (workdir / "c.json").read_text() == (SOURCE_DIR / "configs" / f"{preset}.json").read_text()
    assert run("mrcnn-config", "validate", "c.json").returncode == 0


def test_init_refuses_to_overwrite_without_force(run, workdir):
    (workdir / "c.json").write_text('{"train": {"seed": 1}}')
    result = run("mrcnn-config", "init", "--preset", "shapes_tiny_cpu", "-o", "c.json")
    assert result.returncode == 2
    assert "c.json: already exists (use --force to overwrite)" in result.stderr
    assert read(workdir / "c.json") == {"train": {"seed": 1}}
    assert run("mrcnn-config", "init", "--preset", "shapes_tiny_cpu", "-o", "c.json", "--force").returncode == 0
    assert read(workdir / "c.json")["model"]["backbone"] == "resnet18"


def test_init_unknown_preset_lists_the_known_ones(run, workdir):
    result = run("mrcnn-config", "init", "--preset", "resnet9000", "-o", "c.json")
    assert result.returncode == 2
    assert "unknown preset 'resnet9000', expected one of: " in result.stderr
    assert "shapes_tiny_cpu" in result.stderr
    assert not (workdir / "c.json").exists()


def test_init_into_missing_directory_fails_cleanly(run, workdir):
    result = run("mrcnn-config", "init", "--preset", "shapes_tiny_cpu", "-o", "no/such/dir/c.json")
    assert result.returncode == 2
    assert "no/such/dir/c.json: cannot write: directory 'no/such/dir' does not exist" in result.stderr


# --- show / get --------------------------------------------------------------------------------

def test_show_fills_in_defaults(run, workdir):
    (workdir / "c.json").write_text('{"model": {"num_classes": 5, "min_size": 640}}')
    result = run("mrcnn-config", "show", "c.json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["model"]["num_classes"] == 5
    assert shown["model"]["min_size"] == [640]
    assert shown["model"]["rpn"]["post_nms_top_n_test"] == 1000
    assert shown["train"]["lr_schedule"]["milestones"] == [16, 22]


def test_get_prints_values_and_sections(run, workdir):
    (workdir / "c.json").write_text('{"data": {"train": {"images": "imgs"}}}')
    assert run("mrcnn-config", "get", "c.json", "model.rpn.nms_thresh").stdout == "0.7\n"
    assert run("mrcnn-config", "get", "c.json", "data.train.images").stdout == "imgs\n"
    assert run("mrcnn-config", "get", "c.json", "model.anchor.sizes").stdout == "[[32],[64],[128],[256],[512]]\n"
    section = json.loads(run("mrcnn-config", "get", "c.json", "model.mask").stdout)
    assert section["resolution"] == 28


def test_get_unknown_key_suggests(run, workdir):
    (workdir / "c.json").write_text("{}")
    result = run("mrcnn-config", "get", "c.json", "model.rpn.nms_tresh")
    assert result.returncode == 2
    assert "model.rpn.nms_tresh: unknown key (did you mean 'model.rpn.nms_thresh'?)" in result.stderr


# --- set ---------------------------------------------------------------------------------------

def test_set_is_typed_and_keeps_the_rest_of_the_file(run, workdir):
    (workdir / "c.json").write_text('{"description": "mine", "train": {"seed": 1}}')
    result = run("mrcnn-config", "set", "c.json", "train.steps=5000", "train.epochs=0", "train.optimizer.lr=0.01",
                 "model.min_size=[480,512]", "data.train.images=my images", "model.roi.aligned=true")
    assert result.returncode == 0, result.stderr
    doc = read(workdir / "c.json")
    assert doc["description"] == "mine" and doc["train"]["seed"] == 1
    assert doc["train"]["steps"] == 5000 and isinstance(doc["train"]["steps"], int)
    assert doc["train"]["optimizer"]["lr"] == 0.01
    assert doc["model"]["min_size"] == [480, 512]
    assert doc["data"]["train"]["images"] == "my images"
    assert doc["model"]["roi"]["aligned"] is True
    assert list(doc) == ["description", "train", "model", "data"]  # the user's order is kept


def test_set_with_output_leaves_input_alone(run, workdir):
    original = '{"train": {"seed": 1}}'
    (workdir / "c.json").write_text(original)
    assert run("mrcnn-config", "set", "c.json", "train.seed=2", "-o", "d.json").returncode == 0
    assert (workdir / "c.json").read_text() == original
    assert read(workdir / "d.json") == {"train": {"seed": 2}}


@pytest.mark.parametrize("assignment,message", [
    ("model.num_classes=abc", "model.num_classes: expected an integer >= 2, got 'abc'"),
    ("model.num_classes=1", "model.num_classes: expected an integer >= 2, found 1"),
    ("model.roi.aligned=maybe", "model.roi.aligned: expected true or false, got 'maybe'"),
    ("model.min_size=[480,", "model.min_size: expected an integer or a list of integers >= 1 in JSON syntax"),
    ("train.optimizer.type=adam", "train.optimizer.type: expected one of sgd, adamw, found \"adam\""),
    ("model.num_clases=3", "model.num_clases: unknown key (did you mean 'model.num_classes'?)"),
    ("no_equals_sign", "expected key.path=value, got 'no_equals_sign'"),
    ("model.max_size=100", "model.min_size: 800 is larger than model.max_size (100)"),
])
def test_set_refuses_bad_values_and_keeps_the_file(run, workdir, assignment, message):
    original = '{"train": {"seed": 1}}\n'
    (workdir / "c.json").write_text(original)
    result = run("mrcnn-config", "set", "c.json", assignment)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert (workdir / "c.json").read_text() == original
    assert sorted(os.listdir(workdir)) == ["c.json"]  # no temporary left behind


def test_set_unwritable_output_keeps_input(run, workdir):
    (workdir / "c.json").write_text("{}")
    (workdir / "out").mkdir()
    result = run("mrcnn-config", "set", "c.json", "train.seed=3", "-o", "out")
    assert result.returncode == 2
    assert "out: cannot write: it is a directory" in result.stderr
    result = run("mrcnn-config", "set", "c.json", "train.seed=3", "-o", "missing/d.json")
    assert result.returncode == 2
    assert "missing/d.json: cannot write: directory 'missing' does not exist" in result.stderr
    assert read(workdir / "c.json") == {}


# --- validate ----------------------------------------------------------------------------------

def test_validate_accepts_a_good_file(run, workdir):
    (workdir / "c.json").write_text('{"model": {"num_classes": 3}}')
    result = run("mrcnn-config", "validate", "c.json")
    assert result.returncode == 0
    assert result.stdout == "c.json: valid\n"


def test_validate_reports_every_problem_on_its_own_line(run, workdir):
    (workdir / "c.json").write_text(json.dumps({
        "model": {"num_clases": 3, "max_size": "big", "rpn": {"nms_thresh": 2}},
        "train": {"optimizer": {"type": "rmsprop"}},
    }))
    result = run("mrcnn-config", "validate", "c.json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "mrcnn-config: error: c.json: model.num_clases: unknown key (did you mean 'model.num_classes'?)",
        "mrcnn-config: error: c.json: model.max_size: expected an integer >= 1, found \"big\"",
        "mrcnn-config: error: c.json: model.rpn.nms_thresh: expected a number >= 0 and <= 1, found 2",
        "mrcnn-config: error: c.json: train.optimizer.type: expected one of sgd, adamw, found \"rmsprop\"",
    ]


def test_validate_reports_inconsistent_values(run, workdir):
    (workdir / "c.json").write_text(json.dumps({
        "model": {"anchor": {"sizes": [[32], [64], [128], [256]]}, "min_size": [1400], "num_classes": 1},
    }))
    result = run("mrcnn-config", "validate", "c.json")
    assert result.returncode == 2
    assert "c.json: model.num_classes: expected an integer >= 2, found 1" in result.stderr
    # Consistency is checked once the types are right.
    (workdir / "c.json").write_text(json.dumps({
        "model": {"anchor": {"sizes": [[32], [64], [128], [256]]}, "min_size": [1400]},
    }))
    result = run("mrcnn-config", "validate", "c.json")
    assert result.returncode == 2
    assert "c.json: model.anchor.sizes: has 4 levels, expected 5 (one per FPN level P2-P6)" in result.stderr
    assert "c.json: model.min_size: 1400 is larger than model.max_size (1333)" in result.stderr


def test_validate_warns_about_missing_data_paths(run, workdir):
    (workdir / "c.json").write_text('{"data": {"train": {"images": "nowhere"}}}')
    result = run("mrcnn-config", "validate", "c.json")
    assert result.returncode == 0
    assert "data.train.images: 'nowhere' does not exist" in result.stderr


def test_missing_file(run):
    result = run("mrcnn-config", "validate", "missing.json")
    assert result.returncode == 2
    assert result.stderr == "mrcnn-config: error: missing.json: cannot read: no such file\n"


def test_malformed_json_names_line_and_column(run, workdir):
    (workdir / "c.json").write_text('{\n  "model": {\n    "num_classes": 3,\n  }\n}\n')
    for sub in (["validate", "c.json"], ["show", "c.json"], ["get", "c.json", "model"],
                ["set", "c.json", "train.seed=1"]):
        result = run("mrcnn-config", *sub)
        assert result.returncode == 2
        assert result.stderr.startswith("mrcnn-config: error: c.json:4:3: malformed JSON:"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_top_level_must_be_an_object(run, workdir):
    (workdir / "c.json").write_text("[1, 2]")
    result = run("mrcnn-config", "show", "c.json")
    assert result.returncode == 2
    assert "c.json: expected a JSON object of configuration sections, found [1,2]" in result.stderr


# --- diff / keys -------------------------------------------------------------------------------

def test_diff_lists_resolved_differences(run, workdir):
    (workdir / "a.json").write_text('{"model": {"num_classes": 3}}')
    (workdir / "b.json").write_text('{"model": {"num_classes": 3, "min_size": 640}, "train": {"seed": 9}}')
    result = run("mrcnn-config", "diff", "a.json", "b.json")
    assert result.returncode == 0
    assert result.stdout == "model.min_size: [800] -> [640]\ntrain.seed: 42 -> 9\n"
    assert run("mrcnn-config", "diff", "a.json", "b.json", "--exit-code").returncode == 1
    same = run("mrcnn-config", "diff", "a.json", "a.json", "--exit-code")
    assert same.returncode == 0 and same.stdout == ""


def test_diff_of_equivalent_spellings_is_empty(run, workdir):
    (workdir / "a.json").write_text('{"model": {"min_size": 800}}')
    (workdir / "b.json").write_text("{}")
    assert run("mrcnn-config", "diff", "a.json", "b.json").stdout == ""


def test_keys_documents_every_key(run):
    result = run("mrcnn-config", "keys", "--markdown")
    assert result.returncode == 0
    rows = [l for l in result.stdout.splitlines() if l.startswith("| `")]
    assert len(rows) > 60
    assert any(r.startswith("| `model.rpn.nms_thresh` | a number >= 0 and <= 1 | `0.7` |") for r in rows)


def test_docs_key_table_is_current(run):
    """docs/config-keys.md is generated by `mrcnn-config keys --markdown`: it must match."""
    generated = run("mrcnn-config", "keys", "--markdown").stdout
    doc = (SOURCE_DIR / "docs" / "config-keys.md").read_text()
    assert generated in doc, "regenerate docs/config-keys.md with scripts/gen-docs.sh"


def test_no_subcommand_is_a_usage_error(run):
    result = run("mrcnn-config")
    assert result.returncode == 2
    assert result.stderr.startswith("mrcnn-config: error: ")
