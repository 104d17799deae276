"""The connection pump: task lifecycle, errors, idle timeout, admission, vanishing clients."""

from __future__ import annotations

from websockets.asyncio.client import connect

from nls.protocol import new_id
from server.scripted import HANDLERS, command, recv_event, start


async def test_task_completes_and_connection_serves_another(gateway):
    gw = await gateway(handlers=HANDLERS)
    async with connect(gw.url) as ws:
        for _ in range(3):
            task = new_id()
            started = await start(ws, task)
            assert started["header"]["name"] == "RecognitionStarted"
            assert started["header"]["task_id"] == task
            await ws.send(b"\x00" * 3200)
            await ws.send(command("StopRecognition", task))
            done = await recv_event(ws)
            assert done["header"]["name"] == "RecognitionCompleted"
            assert done["payload"]["result"] == "3200 bytes"
    assert gw.shared.admission.active == 0
