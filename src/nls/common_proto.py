"""NlsCommonProto: any namespace by hand, the 0.0.1 API (drop-in).

``start(name, payload, context)`` connects and sends one command without waiting for an
answer; every event whose name is a key of ``user_callback`` goes to that function as
``fn(json_text, *callback_args)``; binary frames go to ``on_data``; TaskFailed and
transport failures go to ``on_error``. Translation only, like the other drop-in classes:
the session itself is ``nls.sync``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nls.protocol import DEFAULT_URL
from nls.sync.compat import sync_session

__all__ = ["NlsCommonProto"]

Callback = Callable[..., Any] | None


class NlsCommonProto:
    """A raw NLS client for one namespace."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        akid: str | None = None,
        aksecret: str | None = None,
        token: str | None = None,
        appkey: str | None = None,
        namespace: str | None = None,
        on_open: Callback = None,
        on_error: Callback = None,
        on_close: Callback = None,
        on_data: Callback = None,
        user_callback: Mapping[str, Callable[..., Any]] | None = None,
        callback_args: Sequence[Any] = (),
    ) -> None:
        self._sync = sync_session(
            url,
            namespace=namespace or "",
            token=token,
            akid=akid,
            aksecret=aksecret,
            appkey=appkey,
            callbacks={
                **(user_callback or {}),
                "open": on_open,
                "audio": on_data,
                "error": on_error,
                "close": on_close,
            },
            callback_args=callback_args,
            overlap=True,
        )

    def start(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        ping_interval: float | None = 8,
        ping_timeout: float | None = None,
        timeout: float = 10,
    ) -> bool:
        """Connect and send command ``name``; do not wait for an answer.

        Returns:
            True once connected and sent; False on failure (``on_error`` says why).
        """
        return self._sync.start_command(
            name,
            payload,
            context,
            timeout=timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )

    def send_text(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timeout: float = 10,
    ) -> bool:
        """Send another command of the same task."""
        return self._sync.send_command(name, payload, context, timeout)

    def send_binary(self, pcm_data: bytes) -> bool:
        """Send a binary frame (does not block)."""
        return self._sync.send_audio(pcm_data)

    def shutdown(self) -> None:
        """Close the connection now. Idempotent; safe inside callbacks."""
        self._sync.shutdown()
