"""The import rules of design.md §2.3, checked by walking every module's AST.

R8-R10 are checked elsewhere: R8 by each adapter's tests, R9 by ruff's T20, R10 by
review (the runner is the only place an engine is called from a coroutine).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

STDLIB_FORBIDDEN_IN_PROTOCOL = {"asyncio", "threading", "socket", "random", "websockets"}

DROP_INS = (
    "speech_recognizer",
    "speech_synthesizer",
    "speech_transcriber",
    "stream_input_tts",
    "common_proto",
)

# (module prefix, forbidden import prefixes, allowed exceptions)
RULES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # R1: the sans-I/O core imports only the stdlib and nls.exception / nls.typing.
    (
        "nls.protocol",
        ("nls", *STDLIB_FORBIDDEN_IN_PROTOCOL),
        ("nls.protocol", "nls.exception", "nls.typing"),
    ),
    # R2: the asyncio front-end is the I/O core; nls.sync bridges threads onto it, never
    # the other way round. nls.util (audio-file reading, no I/O framework) is a leaf.
    (
        "nls.asyncio",
        ("nls",),
        ("nls.asyncio", "nls.protocol", "nls.exception", "nls.token", "nls.typing", "nls.util"),
    ),
    # R3: the drop-in classes only translate, over nls.sync.
    *(
        (f"nls.{name}", ("nls",), ("nls.sync", "nls.protocol", "nls.exception"))
        for name in DROP_INS
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
    # R7: task handlers use engine interfaces, never concrete adapters. The text rules
    # (pure functions on strings, no model) are not adapters: the tasks apply the NLS
    # sentence rules (a SentenceEnd ends with its mark) to any engine's text.
    (
        "nls_gateway.tasks",
        ("nls_gateway.engines",),
        ("nls_gateway.engines.base", "nls_gateway.engines.text"),
    ),
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


@pytest.mark.parametrize("name", DROP_INS)
def test_drop_ins_build_no_frames(name: str) -> None:
    """R3: a ``{"header": …}`` dict in a drop-in module is a frame the protocol should build."""
    tree = ast.parse((SRC / "nls" / f"{name}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            assert "header" not in keys, f"nls.{name} builds a frame at line {node.lineno}"


def _load_time_imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The src modules ``module`` imports when it is loaded.

    Imports inside functions and under ``if TYPE_CHECKING:`` run later or never, so they
    cannot close a cycle at load time. ``from pkg import name`` imports ``pkg.name`` when
    that is a module, else ``pkg`` itself.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & known
            found.update(subs or {target})
    return (found & known) - {module}


def test_no_import_cycle() -> None:
    modules = dict(_modules())
    graph = {m: _load_time_imports(m, p, set(modules)) for m, p in modules.items()}
    # Depth-first search; a back edge to a module on the current path is a cycle.
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
