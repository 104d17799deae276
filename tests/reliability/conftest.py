"""Fixtures of the reliability suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nls_gateway.testing import GatewayProcess


@pytest.fixture
def gateway_process() -> Iterator[str]:
    """A scripted gateway in its own process, limit one task; yields its URL."""
    with GatewayProcess(max_concurrent_tasks=1) as gw:
        yield gw.url
