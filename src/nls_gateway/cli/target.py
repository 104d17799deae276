"""Where a client command connects: a URL with credentials, or an embedded gateway.

This module owns the connection flags shared by ``recognize``, ``transcribe``,
``synthesize`` and ``voices`` (``--url``/``NLS_URL``, ``--token``/``NLS_TOKEN``,
``--akid``/``--aksecret`` or ``ALIYUN_AK_ID``/``ALIYUN_AK_SECRET``, ``--appkey``/
``NLS_APP_KEY``, ``--language`` for the embedded gateway, ``--realtime``) and turns them
into a :class:`Target`: without a URL it starts an
:class:`~nls_gateway.cli.embedded.EmbeddedGateway`; with one it checks that credentials
were given.

It must not send audio or text: the commands do that with the SDK.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nls_gateway.cli import embedded
from nls_gateway.cli.errors import UsageError
from nls_gateway.config import is_loopback

__all__ = ["Target", "add_target_args", "open_target"]

ENV_URL = "NLS_URL"
ENV_TOKEN = "NLS_TOKEN"
ENV_APPKEY = "NLS_APP_KEY"
ENV_AK_ID = "ALIYUN_AK_ID"
ENV_AK_SECRET = "ALIYUN_AK_SECRET"


@dataclass(frozen=True)
class Target:
    """A resolved place to send tasks (``repr`` hides the secrets)."""

    url: str
    """WebSocket URL, e.g. ``ws://127.0.0.1:8765/ws/v1``."""
    appkey: str
    token: str | None = None
    akid: str | None = None
    aksecret: str | None = None
    local: bool = False
    """The embedded gateway or one on a loopback address: audio need not be paced."""

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, appkey={self.appkey!r}, local={self.local})"

    def session_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the ``nls.asyncio`` session classes."""
        return {
            "url": self.url,
            "appkey": self.appkey,
            "token": self.token,
            "akid": self.akid,
            "aksecret": self.aksecret,
        }

    def realtime(self, choice: bool | None) -> bool:
        """Pace audio to real time? ``--realtime``/``--no-realtime``, else only when remote."""
        return (not self.local) if choice is None else choice


def add_target_args(parser: argparse.ArgumentParser, *, pacing: bool = False) -> None:
    """Add the connection flags; ``pacing`` adds ``--realtime/--no-realtime``."""
    group = parser.add_argument_group(
        "connection",
        "Without --url (or NLS_URL) the command starts a gateway inside this process on a "
        "free loopback port, loads the engines it needs and uses them.",
    )
    group.add_argument(
        "--url", help="gateway or cloud WebSocket URL, e.g. ws://127.0.0.1:8765/ws/v1; env NLS_URL"
    )
    group.add_argument("--token", help="NLS token for --url; env NLS_TOKEN")
    group.add_argument("--akid", help="AccessKey ID (a token is fetched with it); env ALIYUN_AK_ID")
    group.add_argument("--aksecret", help="AccessKey secret; env ALIYUN_AK_SECRET")
    group.add_argument("--appkey", help="project appkey for --url; env NLS_APP_KEY")
    group.add_argument(
        "--language",
        choices=sorted(embedded.APPKEYS),
        default="auto",
        help="recognition language of the embedded gateway (default auto; with --url the "
        "appkey decides)",
    )
    if pacing:
        group.add_argument(
            "--realtime",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="send audio at real-time speed (default: yes for a remote URL, no for the "
            "embedded or a loopback gateway)",
        )


@contextlib.contextmanager
def open_target(
    args: argparse.Namespace,
    *,
    need: Collection[str],
    env: Mapping[str, str] | None = None,
) -> Iterator[Target]:
    """Resolve the flags into a :class:`Target`, starting an embedded gateway if needed.

    Args:
        args: parsed flags from :func:`add_target_args`.
        need: engines the embedded gateway must load (``asr``, ``vad``, ``tts``).
        env: environment (default ``os.environ``).

    Raises:
        UsageError: a URL without an appkey or without any credentials.
        EngineUnavailableError: the embedded gateway's engines are missing.
    """
    env = os.environ if env is None else env
    url = args.url or env.get(ENV_URL)
    if not url:
        with embedded.EmbeddedGateway(need) as gateway:
            yield Target(gateway.url, args.language, token=embedded.TOKEN, local=True)
        return
    appkey = args.appkey or env.get(ENV_APPKEY)
    token = args.token or env.get(ENV_TOKEN)
    akid = args.akid or env.get(ENV_AK_ID)
    aksecret = args.aksecret or env.get(ENV_AK_SECRET)
    if not appkey:
        raise UsageError("--url needs --appkey (or NLS_APP_KEY)")
    if not token and not (akid and aksecret):
        raise UsageError(
            "--url needs --token (or NLS_TOKEN), or --akid and --aksecret "
            "(or ALIYUN_AK_ID and ALIYUN_AK_SECRET)"
        )
    yield Target(url, appkey, token, akid, aksecret, local=_is_loopback(url))


def _is_loopback(url: str) -> bool:
    return is_loopback(urlsplit(url).hostname or "")
