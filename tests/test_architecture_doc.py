"""docs/architecture.md matches the code: every module and folder it names exists and imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
FILES = sorted(
    p.relative_to(ROOT).as_posix()
    for top in ("src", "tests")
    for p in (ROOT / top).rglob("*.py")
    if "node_modules" not in p.parts
)
PATHS = sorted(set(re.findall(r"`([a-z_/]+\.py|[a-z_]+/)`", DOC)))
DOTTED = sorted(set(re.findall(r"`((?:nls|nls_gateway)(?:\.[a-z_0-9]+)+)`", DOC)))


def _module(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def test_the_doc_names_modules() -> None:
    assert len(PATHS) >= 20  # the regexes still find the doc's references


@pytest.mark.parametrize("name", PATHS)
def test_named_path_exists_and_imports(name: str) -> None:
    if name.endswith("/"):
        matches = [f for f in FILES if f"/{name}__init__.py" in f"/{f}"]
    else:
        matches = [f for f in FILES if f == name or f.endswith("/" + name)]
    assert matches, f"docs/architecture.md names {name}, which is not in src/ or tests/"
    for path in matches:
        if path.startswith("src/"):
            importlib.import_module(_module(path))


@pytest.mark.parametrize("name", DOTTED)
def test_named_module_or_attribute_imports(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        module, _, attr = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), name
