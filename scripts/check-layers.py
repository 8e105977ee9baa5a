#!/usr/bin/env python3
"""Layers point down: a module of src/ may use only modules of its own layer
or of the layers below (docs/ARCHITECTURE.md). Reads every `crate::<module>`
path in src/<module>/ and src/<module>.rs and fails naming each import that
points up. Run by scripts/test.sh."""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Bottom first; modules in one tuple are one layer and may use each other.
LAYERS = [
    ("model", "proto"),
    ("storage",),
    ("audit",),
    ("ingest",),
    ("query",),
    ("config", "connect"),
    ("server", "collect", "integrate"),
    ("client", "bench", "generate", "demo", "inspect"),
]

# Known upward imports, each with why it is still there. Empty it, don't grow it.
ALLOWED: dict[tuple[str, str], str] = {
    ("server", "demo"): "serve --demo loads the demo plant after opening the engine (issue 15)",
    ("generate", "client"): "lotline generate writes through the CLI's Flight client",
}

PATH = re.compile(r"\bcrate::([a-z_]+)")


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if module in layer:
            return index
    return None


def main() -> int:
    src = Path(__file__).resolve().parent.parent / "src"
    problems = []
    unknown = set()
    for path in sorted(src.rglob("*.rs")):
        parts = path.relative_to(src).parts
        module = parts[0].removesuffix(".rs")
        # Tests may build their data with anything (e.g. the generator).
        if module in ("main", "lib") or path.name == "tests.rs" or "tests" in parts[:-1]:
            continue
        own = layer_of(module)
        if own is None:
            unknown.add(module)
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("//"):
                continue
            for used in PATH.findall(line):
                target = layer_of(used)
                if target is None:
                    unknown.add(used)
                elif target > own and (module, used) not in ALLOWED:
                    problems.append(f"{path.relative_to(src.parent)}:{number}: {module} uses {used}, a layer above it")
    for module in sorted(unknown):
        problems.append(f"module '{module}' has no layer in scripts/check-layers.py")
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)")
        return 1
    print("check-layers: every import points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
