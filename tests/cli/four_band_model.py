"""Trains the 4-band hidden-class shapes model that test_bands_hidden_class and test_precision
share (mrcnn_testing.four_band_model) before they start: the ctest fixture of those tests."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, as pytest.ini makes it

from mrcnn_testing import four_band_model  # noqa: E402

print(f"the 4-band hidden-class shapes model: {four_band_model()}")
