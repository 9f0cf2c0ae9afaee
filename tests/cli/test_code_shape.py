"""The code keeps the shape docs/ARCHITECTURE.md promises, measured with lizard (an independent C++
function parser from PyPI): no function in lib/ or tools/ over 120 lines except the declarative
key table and the pickle opcode switch, none in lib/train/ from 80 lines, tool mains that only
wire flags (each file under 160 lines)."""
from pathlib import Path

import lizard
import pytest

from mrcnn_testing import SOURCE_DIR

LONGEST = 120
LONGEST_IN_TRAINER = 79
# Declarative tables and switches, whose length is their content.
EXEMPT = {"mrcnn::config::build_schema", "mrcnn::Unpickler::step"}
SUFFIXES = {".h", ".cpp", ".cu"}


def functions(folder):
    for path in sorted((SOURCE_DIR / folder).rglob("*")):
        if path.suffix in SUFFIXES:
            for function in lizard.analyze_file(str(path)).function_list:
                yield path.relative_to(SOURCE_DIR), function


def too_long(folder, limit):
    return [f"{path}:{f.start_line} {f.name}: {f.length} lines" for path, f in functions(folder)
            if f.length > limit and f.name not in EXEMPT]


@pytest.mark.parametrize("folder", ["lib", "tools"])
def test_no_function_over_the_limit(folder):
    assert too_long(folder, LONGEST) == []


def test_the_trainer_is_made_of_small_parts():
    assert too_long("lib/train", LONGEST_IN_TRAINER) == []


def test_tool_mains_only_wire_flags():
    long_mains = [f"{p.relative_to(SOURCE_DIR)}: {len(p.read_text().splitlines())} lines"
                  for p in sorted((SOURCE_DIR / "tools").glob("*/main.cpp")) if len(p.read_text().splitlines()) >= 160]
    assert long_mains == []


def test_the_measure_sees_long_functions(tmp_path):
    """lizard finds a long function (so a pass above means something)."""
    source = tmp_path / "long.cpp"
    source.write_text("int f(int x) {\n" + "  x += 1;\n" * 130 + "  return x;\n}\n")
    [function] = lizard.analyze_file(str(source)).function_list
    assert function.length > LONGEST
