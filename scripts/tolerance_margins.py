"""How far ours is from torchvision in the float32 reference tests (test_loss_parity, test_model_parity):
the observed error next to each test's tolerance, under whatever CPU caps the environment sets, e.g.
  ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python scripts/tolerance_margins.py
Needs the build (build/tests: loss_dump, model_dump) and .venv (torch, torchvision)."""
import sys
import tempfile
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "reference"))
import torch
from torchvision.ops import box_iou
import test_loss_parity as lp
import test_model_parity as mp

class F:
    def __init__(s): s.root = Path(tempfile.mkdtemp())
    def mktemp(s, n): p = s.root / n; p.mkdir(); return p

tmp, reference = lp.setup.__wrapped__(F())
for dice in (0.0,):
    ours = lp.run_ours(tmp, lp.torchvision_config(dice))
    worst = max(abs(ours[k] - v) / max(abs(v), 1e-6 / 1e-4) for k, v in reference.items())
    print(f"loss parity: max relative error {worst:.2e} (tolerance 1e-4)")

for param in ("resnet50", "resnet18", "resnet18-fpn128"):
    class R: pass
    r = R(); r.param = param
    ref, ours, n = mp.outputs.__wrapped__(r, F())
    feat = max(mp.relative_error(ours[f"features_{l}"], f) for l, f in enumerate(ref["features"]))
    prop = 0.0
    for i in range(n):
        t, m = ref["proposals"][i], ours[f"proposals_{i}"]
        d = torch.cdist(t, m, p=float("inf"))
        prop = max(prop, float(max(d.min(1).values.max(), d.min(0).values.max())) / float(t.abs().max()))
    iou_min, score_max, mask_min = 1.0, 0.0, 1.0
    for i in range(n):
        a = ref["detections"][i]; keep = a["scores"] >= 0.05
        for box, score, label in zip(a["boxes"][keep], a["scores"][keep], a["labels"][keep]):
            same = ours[f"labels_{i}"] == label
            iou = box_iou(box[None], ours[f"boxes_{i}"][same])[0]; j = int(iou.argmax())
            iou_min = min(iou_min, float(iou[j])); score_max = max(score_max, abs(float(ours[f"scores_{i}"][same][j]) - float(score)))
        index, _ = mp.match(a["boxes"], ours[f"boxes_{i}"])
        rm, om = a["masks"] > 0.5, ours[f"masks_{i}"] > 0.5
        for k in range(len(rm)):
            x, y = rm[k, 0], om[index[k], 0]; u = (x | y).sum()
            if u: mask_min = min(mask_min, float((x & y).sum() / u))
    print(f"model parity {param}: batch {mp.relative_error(ours['batch'], ref['batch']):.1e} (1e-6), features {feat:.1e} (1e-4), "
          f"proposals {prop:.1e} (1e-4), detection IoU min {iou_min:.5f} (0.99), score diff {score_max:.1e} (1e-3), mask IoU min {mask_min:.4f} (0.98)")
