#!/usr/bin/env python3
"""Checks that every include between lib/ folders follows the layer table in docs/ARCHITECTURE.md.

The table is the fenced block after the line "<!-- layers -->" in that file: one line per folder,
`folder: folders it may include`. A folder may always include itself; tools/ may include any
folder. Every folder under lib/ must appear in the table, so a new one has to be placed first.

    scripts/check_layers.py [--root DIR]      exit 0 when every include is allowed, else 1
"""
import argparse
import re
import sys
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/')
SOURCE_SUFFIXES = {".h", ".hpp", ".cpp", ".cu", ".cuh", ".in"}


def read_layer_table(architecture: Path) -> dict:
    """folder -> set of folders it may include, from the block after '<!-- layers -->'."""
    lines = architecture.read_text().splitlines()
    try:
        start = lines.index("<!-- layers -->")
    except ValueError:
        sys.exit(f"{architecture}: no '<!-- layers -->' marker before the layer table")
    table = {}
    fence_seen = False
    for line in lines[start + 1:]:
        if line.startswith("```"):
            if fence_seen:
                return table
            fence_seen = True
            continue
        if fence_seen and line.strip():
            folder, _, allowed = line.partition(":")
            table[folder.strip()] = set(allowed.split())
    sys.exit(f"{architecture}: the layer table after '<!-- layers -->' is not a closed ``` block")


def source_files(folder: Path):
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES)


def violations(root: Path, table: dict) -> list:
    lib = root / "lib"
    folders = sorted(p.name for p in lib.iterdir() if p.is_dir())
    problems = [f"lib/{f}/ is not in the layer table of docs/ARCHITECTURE.md" for f in folders if f not in table]
    checked = [(f, lib / f) for f in folders if f in table] + [("tools", root / "tools")]
    for layer, folder in checked:
        for path in source_files(folder):
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                match = INCLUDE.match(line)
                if not match or match.group(1) not in folders or match.group(1) == layer:
                    continue
                if layer == "tools" or match.group(1) in table[layer]:
                    continue
                problems.append(f"{path.relative_to(root)}:{number}: lib/{layer}/ may not include "
                                f"lib/{match.group(1)}/ (allowed: {' '.join(sorted(table[layer])) or 'nothing'})")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    root = parser.parse_args().root
    problems = violations(root, read_layer_table(root / "docs" / "ARCHITECTURE.md"))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} include(s) against the layers in docs/ARCHITECTURE.md")
        return 1
    print("includes follow the layers in docs/ARCHITECTURE.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
