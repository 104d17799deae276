"""Scale-out: two replicas sharing a token secret accept each other's CreateToken tokens,
so a load balancer may send each session to any replica (no shared store, no stickiness)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import nls.asyncio as nlsa
from nls.exception import ConnectionUnavailable
from nls.token import getToken

SECRET = b"shared-secret-for-the-replicas!!"
AKID, AKSECRET = "replica-akid", "replica-aksecret"


async def test_two_replicas_accept_one_token(gateway: Any) -> None:
    replicas = [
        await gateway(token_secret=SECRET, access_keys={AKID: AKSECRET}, appkey=["app"])
        for _ in range(2)
    ]
    # One CreateToken call against replica A …
    token = await asyncio.to_thread(getToken, AKID, AKSECRET, url=replicas[0].http_url)
    # … and sessions alternating between A and B with that token all succeed.
    for i in range(4):
        gw = replicas[i % 2]
        audio = await nlsa.synthesize("好", url=gw.url, appkey="app", token=token)
        assert len(audio) > 0


async def test_replica_with_another_secret_refuses_the_token(gateway: Any) -> None:
    a = await gateway(token_secret=SECRET, access_keys={AKID: AKSECRET}, appkey=["app"])
    b = await gateway(
        token_secret=b"a-different-secret-0123456789abc", access_keys={AKID: AKSECRET}
    )
    token = await asyncio.to_thread(getToken, AKID, AKSECRET, url=a.http_url)
    with pytest.raises(ConnectionUnavailable) as info:
        await nlsa.synthesize("好", url=b.url, appkey="app", token=token)
    assert info.value.http_status == 403
    assert info.value.body == f"Meta:ACCESS_DENIED:The token '{token}' is invalid!"
