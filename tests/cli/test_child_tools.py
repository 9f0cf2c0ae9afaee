"""Tools that run other tools as child processes (mrcnn-eval --config runs mrcnn-config export-coco
and mrcnn-infer; mrcnn-config import-tf --checkpoint runs mrcnn-infer --save-model): a child's
failure reaches the user as one error line under the command they typed, naming the child, and
the files mrcnn-eval writes for its children (in $TMPDIR) are gone on every way out: a child's
failure, an error after the children, a signal."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from cli.test_tf_checkpoint import IRV2_CONFIG
from mrcnn_testing import BIN_DIR, assert_one_error, run_tool, sample_images, write_mask_pngs


def coco_val_config(workdir, config, categories):
    """workdir/c.json: the small model's configuration evaluated on 3 photos with COCO ground truth
    naming these category ids."""
    from PIL import Image

    paths = sample_images(workdir / "val")
    gt = {"images": [], "annotations": [], "categories": [{"id": c, "name": f"c{c}"} for c in categories]}
    for i, p in enumerate(paths, 1):
        w, h = Image.open(p).size
        gt["images"].append({"id": i, "file_name": p.name, "height": h, "width": w})
        gt["annotations"].append({"id": i, "image_id": i, "category_id": categories[0], "bbox": [10, 10, 50, 80],
                                  "area": 4000, "iscrowd": 0})
    (workdir / "val.json").write_text(json.dumps(gt))
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": {"format": "coco", "annotations": "val.json", "images": "val"}}
    cfg["eval"] = {"device": "cpu"}
    (workdir / "c.json").write_text(json.dumps(cfg))
    return "c.json"


def mask_png_val_config(workdir, config, images=3):
    """workdir/m.json: the small model's configuration evaluated on a mask_png set (its ground truth
    made by the export-coco child)."""
    write_mask_pngs(workdir, [(96, 96, [(10, 10, 60, 70)])] * images)
    cfg = json.loads(config.read_text())
    cfg["data"] = {"val": {"format": "mask_png", "images": "png_images", "annotations": "png_masks"}}
    cfg["eval"] = {"device": "cpu"}
    (workdir / "m.json").write_text(json.dumps(cfg))
    return "m.json"


def temp_dir(workdir):
    folder = workdir / "tmp"
    folder.mkdir()
    return folder


def test_failing_inference_child_is_one_line(workdir, small_model):
    weights, config = small_model
    coco_val_config(workdir, config, [1, 2])
    (workdir / "bad.pth").write_bytes(b"not weights at all")
    tmp = temp_dir(workdir)
    result = run_tool(workdir, "mrcnn-eval", "--config", "c.json", "--weights", "bad.pth", timeout=120,
                      env={"TMPDIR": str(tmp)})
    line = assert_one_error(result, "mrcnn-eval", "mrcnn-eval: error: mrcnn-infer: ", "bad.pth")
    assert str(tmp) not in line, line
    assert list(tmp.iterdir()) == []


def test_failing_ground_truth_child_is_one_line(workdir, small_model):
    weights, config = small_model
    mask_png_val_config(workdir, config)
    cfg = json.loads((workdir / "m.json").read_text())
    cfg["data"]["val"]["annotations"] = "no_masks"
    (workdir / "m.json").write_text(json.dumps(cfg))
    tmp = temp_dir(workdir)
    result = run_tool(workdir, "mrcnn-eval", "--config", "m.json", "--weights", weights, timeout=120,
                      env={"TMPDIR": str(tmp)})
    line = assert_one_error(result, "mrcnn-eval", "mrcnn-eval: error: mrcnn-config: ", "no_masks")
    assert str(tmp) not in line, line  # the files it names are the user's, not gone temporary ones
    assert list(tmp.iterdir()) == []


def test_error_after_the_children_leaves_no_temporary_files(workdir, small_model):
    """The model predicts classes 1 and 2, the ground truth knows 1 only: the detections the child
    wrote are refused while mrcnn-eval reads them, and are removed all the same."""
    weights, config = small_model
    coco_val_config(workdir, config, [1])
    tmp = temp_dir(workdir)
    result = run_tool(workdir, "mrcnn-eval", "--config", "c.json", "--weights", weights, timeout=120,
                      env={"TMPDIR": str(tmp)})
    line = assert_one_error(result, "mrcnn-eval", "category_id 2 is not in the ground truth",
                            f"the detections of {weights} on c.json's data.val: detection ")
    assert str(tmp) not in line, line  # the detections file is gone: the line names what made them
    assert list(tmp.iterdir()) == []


def processes_naming(text):
    """Pids of the processes whose command line holds text."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and text.encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                pids.append(int(entry))
        except OSError:
            pass
    return pids


def test_signal_ends_the_child_and_leaves_no_temporary_files(workdir, small_model):
    """SIGTERM while the mrcnn-infer child runs (the ground truth already written beside its
    detections): the child ends too, the folder goes, and the exit says the signal."""
    weights, config = small_model
    mask_png_val_config(workdir, config, images=40)
    tmp = temp_dir(workdir)
    evaluation = subprocess.Popen([str(BIN_DIR / "mrcnn-eval"), "--config", "m.json", "--weights", str(weights)],
                                  cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "TMPDIR": str(tmp)})
    children = []
    try:
        deadline = time.monotonic() + 60
        while not children and time.monotonic() < deadline and evaluation.poll() is None:
            children = [p for p in processes_naming(str(tmp)) if p != evaluation.pid
                        and b"mrcnn-infer" in open(f"/proc/{p}/cmdline", "rb").read()]
            time.sleep(0.02)
        assert children, f"no mrcnn-infer child seen: {evaluation.poll()} {evaluation.stderr.read()[-2000:]}"
        assert any(f.name == "ground_truth.json" for d in tmp.iterdir() for f in d.iterdir())
        evaluation.send_signal(signal.SIGTERM)
        evaluation.wait(timeout=30)
        assert evaluation.returncode == -signal.SIGTERM, evaluation.stderr.read()[-2000:]
        assert list(tmp.iterdir()) == []
        assert processes_naming(str(tmp)) == []
    finally:
        # Only what is still ours: a child still naming the test's folder (an exited pid may already
        # belong to another process), and mrcnn-eval through its Popen.
        for pid in processes_naming(str(tmp)):
            if pid != evaluation.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        evaluation.kill()
        evaluation.wait(timeout=30)


def test_failing_conversion_is_one_line(workdir):
    """import-tf --checkpoint: the child mrcnn-infer's reason is the one line; the configuration is
    written only after the conversion succeeded, so neither file is."""
    (workdir / "pipeline.config").write_text(IRV2_CONFIG)
    (workdir / "ckpt.index").write_bytes(b"not a checkpoint index")
    tmp = temp_dir(workdir)
    result = run_tool(workdir, "mrcnn-config", "import-tf", "pipeline.config", "-o", "tf.json", "--checkpoint",
                      "ckpt", "--save-model", "tf.safetensors", timeout=300, env={"TMPDIR": str(tmp)})
    line = assert_one_error(result, "mrcnn-config", "mrcnn-config: error: mrcnn-infer: ", "ckpt.index")
    assert str(tmp) not in line  # the user's files are named, not the staged copy
    assert not (workdir / "tf.json").exists() and not (workdir / "tf.safetensors").exists()
    assert list(tmp.iterdir()) == []


def test_missing_checkpoint_is_found_before_anything_is_written(workdir):
    (workdir / "pipeline.config").write_text(IRV2_CONFIG)
    started = time.monotonic()
    result = run_tool(workdir, "mrcnn-config", "import-tf", "pipeline.config", "-o", "tf.json", "--checkpoint",
                      "no_such_checkpoint", "--save-model", "tf.safetensors")
    line = assert_one_error(result, "mrcnn-config", "no_such_checkpoint")
    assert "mrcnn-infer" not in line and time.monotonic() - started < 5  # no child was started for it
    assert not (workdir / "tf.json").exists() and not (workdir / "tf.safetensors").exists()


def config_with_stand_in_infer(workdir, script):
    """workdir/bin/mrcnn-config, a copy of the real one, beside a shell script standing in for
    mrcnn-infer (found next to the running executable): a child that dies or hangs on demand."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    shutil.copy2(BIN_DIR / "mrcnn-config", bin_dir / "mrcnn-config")
    (bin_dir / "mrcnn-infer").write_text("#!/bin/sh\n" + script)
    (bin_dir / "mrcnn-infer").chmod(0o755)
    (workdir / "pipeline.config").write_text(IRV2_CONFIG)
    (workdir / "ckpt.index").write_bytes(b"")  # the parent checks that the checkpoint is there
    return [str(bin_dir / "mrcnn-config"), "import-tf", "pipeline.config", "-o", "tf.json", "--checkpoint", "ckpt",
            "--save-model", "tf.safetensors"]


def test_child_killed_by_a_signal_is_one_error_line_not_a_bug(workdir):
    """A child killed by SIGKILL (the OOM killer, a user) printed nothing: the parent's one line says
    so, with the shell's exit code 128 + 9, and no "internal error"."""
    tmp = temp_dir(workdir)
    argv = config_with_stand_in_infer(workdir, "kill -KILL $$\n")
    result = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TMPDIR": str(tmp)})
    assert result.returncode == 128 + signal.SIGKILL, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == ["mrcnn-config: error: mrcnn-infer was killed by signal 9 (SIGKILL)"], result.stderr
    assert not (workdir / "tf.json").exists() and list(tmp.iterdir()) == []


def pid_alive(pid):
    """Whether pid is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("trap, most_seconds", [("", 2.0), ("trap '' TERM\n", 10.0)])
def test_signal_ends_the_import_child_within_seconds(workdir, trap, most_seconds):
    """SIGTERM to import-tf while its child converts: the child is ended with it (forwarded; one
    that ignores SIGTERM is killed after a bounded wait), the staged configuration goes, nothing
    is written, and the exit says the signal."""
    tmp = temp_dir(workdir)
    argv = config_with_stand_in_infer(workdir, trap + "echo $$ > child.pid\nexec sleep 120\n")
    parent = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(tmp)})
    child = None
    try:
        deadline = time.monotonic() + 30
        while child is None and time.monotonic() < deadline:
            text = (workdir / "child.pid").read_text() if (workdir / "child.pid").exists() else ""
            child = int(text) if text.endswith("\n") else None
            time.sleep(0.02)
        assert child is not None, parent.stderr.read() if parent.poll() is not None else "no child started"
        time.sleep(0.2)  # past the script's exec
        started = time.monotonic()
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        assert time.monotonic() - started < most_seconds
        assert parent.returncode == -signal.SIGTERM, parent.stderr.read()[-2000:]
        assert not pid_alive(child)
        assert list(tmp.iterdir()) == [] and not (workdir / "tf.json").exists()
    finally:
        if child is not None and pid_alive(child) and b"sleep" in open(f"/proc/{child}/cmdline", "rb").read():
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait(timeout=30)
