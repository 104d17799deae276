"""The import rules of design.md §2.3, checked by walking every module's AST."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

STDLIB_FORBIDDEN_IN_PROTOCOL = {"asyncio", "threading", "socket", "random", "websockets"}

# (module prefix, forbidden import prefixes, allowed exceptions)
RULES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # R1: the sans-I/O core imports only the stdlib and nls.exception / nls.typing.
    (
        "nls.protocol",
        ("nls", *STDLIB_FORBIDDEN_IN_PROTOCOL),
        ("nls.protocol", "nls.exception", "nls.typing"),
    ),
    # R4: the SDK never imports the gateway, numpy or engine libraries.
    ("nls", ("nls_gateway", "numpy", "faster_whisper", "onnxruntime", "av", "soxr"), ()),
    # R5: the gateway uses only nls.protocol, nls.exception and nls.typing from nls
    # (the CLI drives both halves, decision 1, so it may use the SDK's public API).
    ("nls_gateway", ("nls",), ("nls.protocol", "nls.exception", "nls.typing")),
    # R6: engines know nothing of the network, asyncio or the rest of the gateway.
    (
        "nls_gateway.engines",
        ("nls", "nls_gateway", "asyncio", "websockets"),
        ("nls_gateway.engines", "nls_gateway.exception"),
    ),
    # R7: task handlers use engine interfaces, never concrete adapters.
    ("nls_gateway.tasks", ("nls_gateway.engines",), ("nls_gateway.engines.base",)),
]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_module_respects_import_rules(module: str, path: Path) -> None:
    imports = _imports(module, path)
    for prefix, forbidden, allowed in RULES:
        if not _matches(module, prefix):
            continue
        if prefix == "nls_gateway" and _matches(module, "nls_gateway.cli"):
            allowed = (*allowed, "nls")
        for name in imports:
            if any(_matches(name, a) for a in allowed):
                continue
            bad = [f for f in forbidden if _matches(name, f)]
            # A module may always import from its own package subtree.
            if bad and not _matches(name, prefix):
                raise AssertionError(f"{module} imports {name} (rule for {prefix})")
