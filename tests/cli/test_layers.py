"""The include layers of docs/ARCHITECTURE.md hold in lib/ and tools/ (scripts/check_layers.py),
and the check fails on an include that runs up the layers or a folder missing from the table."""
import shutil
import subprocess
import sys

from mrcnn_testing import SOURCE_DIR

CHECK = SOURCE_DIR / "scripts" / "check_layers.py"


def check(root):
    return subprocess.run([sys.executable, str(CHECK), "--root", str(root)], capture_output=True, text=True,
                          timeout=60)


def copy_tree(tmp_path):
    root = tmp_path / "repo"
    for part in ("lib", "tools", "docs"):
        shutil.copytree(SOURCE_DIR / part, root / part)
    return root


def test_the_repository_follows_its_layers():
    result = check(SOURCE_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_include_up_the_layers_is_named(tmp_path):
    root = copy_tree(tmp_path)
    header = root / "lib" / "eval" / "rle.h"
    header.write_text('#include "model/mask_rcnn.h"\n' + header.read_text())
    result = check(root)
    assert result.returncode == 1
    assert "lib/eval/rle.h:1: lib/eval/ may not include lib/model/" in result.stdout


def test_a_folder_outside_the_table_is_named(tmp_path):
    root = copy_tree(tmp_path)
    (root / "lib" / "tiles").mkdir()
    (root / "lib" / "tiles" / "tiles.h").write_text('#include "core/error.h"\n')
    result = check(root)
    assert result.returncode == 1
    assert "lib/tiles/ is not in the layer table" in result.stdout
