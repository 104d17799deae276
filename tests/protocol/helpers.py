"""ProtocolPair: a ClientProtocol wired to a ServerProtocol with no sockets (h11 style)."""

from __future__ import annotations

import itertools
from typing import Any

from nls.protocol import (
    AudioData,
    AudioReceived,
    ClientProtocol,
    CommandReceived,
    Event,
    ServerProtocol,
)


def counting_ids(prefix: str = "") -> Any:
    """Deterministic 32-hex ids: 000…001, 000…002, …"""
    counter = itertools.count(1)
    return lambda: f"{next(counter):032x}"


class ProtocolPair:
    """Moves frames between a client and a server protocol object."""

    def __init__(self, namespace: str, appkey: str = "appkey") -> None:
        self.client = ClientProtocol(namespace, appkey, id_factory=counting_ids())
        self.server = ServerProtocol(id_factory=counting_ids())
        self.client_frames: list[str | bytes] = []
        self.server_frames: list[str | bytes] = []

    def to_server(self) -> list[CommandReceived | AudioReceived]:
        """Deliver the client's pending frames; return what the server made of them."""
        for frame in self.client.data_to_send():
            self.client_frames.append(frame)
            if isinstance(frame, str):
                self.server.receive_text(frame)
            else:
                self.server.receive_binary(frame)
        return self.server.events_received()

    def to_client(self) -> list[Event | AudioData]:
        """Deliver the server's pending frames; return the client's events."""
        for frame in self.server.data_to_send():
            self.server_frames.append(frame)
            if isinstance(frame, str):
                self.client.receive_text(frame)
            else:
                self.client.receive_binary(frame)
        return self.client.events_received()
