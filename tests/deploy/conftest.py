"""Fixtures of the deployment suite: two real replicas behind a real nginx (module-wide).

The replicas run what deploy/ runs (``nls serve`` with real engines, one shared
``--token-secret``, AccessKey + appkey credentials, not dev mode) with a stream budget of
one each, so two live sessions fill the cluster. A test that kills or drains a replica
leaves it down; the next test's ``cluster`` restarts it on the same port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import REPLICA_ARGS, Cluster, Nginx, Replica, find_nginx


@pytest.fixture(scope="module")
def _cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    binary = find_nginx()
    if binary is None:
        pytest.skip("nginx not found (scripts/install-nginx installs the Debian package)")
    replicas = [Replica(REPLICA_ARGS) for _ in range(2)]
    nginx = None
    try:
        for replica in replicas:
            replica.start()  # both load their engines at once
        for replica in replicas:
            replica.wait_ready()
        workdir: Path = tmp_path_factory.mktemp("nginx")
        nginx = Nginx(binary, workdir, replicas)
        yield Cluster(replicas, nginx)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()


@pytest.fixture
def cluster(_cluster: Cluster) -> Cluster:
    _cluster.ensure_up()
    deadline = time.monotonic() + 5
    while _cluster.with_tasks() != [0, 0]:  # a failed test's sessions are ending
        assert time.monotonic() < deadline, "a previous test left a task running"
        time.sleep(0.05)
    return _cluster
