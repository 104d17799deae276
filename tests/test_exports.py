"""Every module's ``__all__`` names exist, and ``nls.protocol`` re-exports its submodules'."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import nls
import nls_gateway


def _modules() -> list[str]:
    names = []
    for package in (nls, nls_gateway):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".console" not in info.name:
                names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", ()):
        assert hasattr(module, attr), f"{name}.__all__ lists missing {attr!r}"


def test_protocol_package_exports_its_submodules() -> None:
    import nls.protocol as protocol

    for sub in ("client", "server", "commands", "events", "messages", "states", "constants"):
        module = importlib.import_module(f"nls.protocol.{sub}")
        missing = set(module.__all__) - set(protocol.__all__)
        assert not missing, f"nls.protocol does not re-export {sorted(missing)} from {sub}"
