"""Makes the TF OD API reference model that the TF tests share (mrcnn_testing.tfod_reference_model)
before they start: the ctest fixture of those tests. Without TensorFlow to make it with (PyPI
unreachable) it says so and exits 0: each test then skips, saying why, itself."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, as pytest.ini makes it

import pytest  # noqa: E402

from mrcnn_testing import tfod_reference_model  # noqa: E402

try:
    print(f"the TF OD API reference model: {tfod_reference_model()}")
except pytest.skip.Exception as skipped:
    print(f"the TF OD API reference model is not made: {skipped}")
