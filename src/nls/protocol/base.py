"""Protocol: what the client and server state machines share.

This module owns the parts of a sans-I/O protocol object that do not depend on its role:
the current task's ``state`` (with its ``=`` debug log line), the outgoing frame queue
that ``data_to_send()`` empties, and cutting audio into binary frames of at most
``MAX_FRAME_BYTES`` (64 KiB, like the official Java SDK, protocol.md §2.2) — the one place
audio is framed, for SDK uploads and gateway TTS alike. Role rules (which commands and
events are legal when) stay in ``client`` and ``server``. No I/O here.
"""

from __future__ import annotations

import logging

from nls.protocol.constants import MAX_FRAME_BYTES
from nls.protocol.states import TaskState

__all__ = ["Protocol"]

logger = logging.getLogger("nls.protocol")


class Protocol:
    """Base of :class:`~nls.protocol.ClientProtocol` and :class:`~nls.protocol.ServerProtocol`."""

    def __init__(self) -> None:
        self._state = TaskState.IDLE
        self.task_id = ""
        self._out: list[str | bytes] = []
        self._debug = logger.isEnabledFor(logging.DEBUG)

    @property
    def state(self) -> TaskState:
        """The current task's state."""
        return self._state

    def data_to_send(self) -> list[str | bytes]:
        """Frames to send, in order: ``str`` as text frames, ``bytes`` as binary frames."""
        out, self._out = self._out, []
        return out

    def _set_state(self, state: TaskState) -> None:
        if self._debug and state is not self._state:
            logger.debug("= %s %s -> %s", self.task_id, self._state.name, state.name)
        self._state = state

    def _queue_audio(self, data: bytes) -> None:
        """Queue ``data`` as binary frames of at most ``MAX_FRAME_BYTES`` each."""
        view = memoryview(data)
        for offset in range(0, len(view), MAX_FRAME_BYTES):
            self._out.append(bytes(view[offset : offset + MAX_FRAME_BYTES]))
