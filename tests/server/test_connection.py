"""The connection pump: task lifecycle, errors, idle timeout, admission, vanishing clients."""

from __future__ import annotations

import asyncio
import hashlib
import json

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from nls.protocol import new_id
from nls_gateway.auth import Credentials
from nls_gateway.tasks import HANDLERS as TASK_HANDLERS
from nls_gateway.tasks.base import Engines, Project
from nls_gateway.testing import ScriptedVad
from server.scripted import CLOSED, HANDLERS, command, recv_event, start
from server.test_server import http
from tasks.fakes import ScriptedAsr, frames, pcm, silence, tone


async def _closed_code(ws, timeout: float = 5.0) -> int | None:
    """Wait until the server closes the socket; return its close code."""
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return ws.close_code


async def _eventually(predicate, timeout: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _sessions(gw, namespace: str, outcome: str) -> float:
    value = gw.metrics.registry.get_sample_value(
        "nls_sessions_total", {"namespace": namespace, "outcome": outcome}
    )
    return value or 0.0


async def test_several_tasks_on_one_connection(gateway):
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
    assert _sessions(gw, "SpeechRecognizer", "completed") == 3
    seconds = gw.metrics.registry.get_sample_value(
        "nls_audio_in_seconds_total", {"namespace": "SpeechRecognizer"}
    )
    assert seconds == pytest.approx(0.3)


async def test_audio_queued_behind_a_busy_handler_arrives_joined_and_in_order(gateway):
    # The first on_audio sleeps; the frames read meanwhile reach the handler in one call
    # (one engine hop for the backlog), byte for byte in order; a command ends the run.
    gw = await gateway(handlers=HANDLERS)
    frames = [bytes([k]) * 640 for k in range(12)]
    async with connect(gw.url) as ws:
        task = new_id()
        await start(ws, task, script="slow_audio", delay=0.3)
        await ws.send(frames[0])
        await asyncio.sleep(0.1)  # the handler is now asleep on the first frame
        for frame in frames[1:]:
            await ws.send(frame)
        await ws.send(command("StopRecognition", task))
        done = await recv_event(ws)
    assert done["header"]["name"] == "RecognitionCompleted", done
    payload = done["payload"]
    assert payload["calls"][0] == 640 and sum(payload["calls"]) == 12 * 640
    assert len(payload["calls"]) < 12  # the backlog was joined
    assert payload["sha256"] == hashlib.sha256(b"".join(frames)).hexdigest()


async def test_background_completion_frees_task_and_socket_stays_open(gateway):
    gw = await gateway(handlers=HANDLERS)
    async with connect(gw.url) as ws:
        first = new_id()
        await start(ws, first, script="bg_complete")
        done = await recv_event(ws)
        assert done["header"]["name"] == "RecognitionCompleted"
        await _eventually(lambda: first in CLOSED)
        assert gw.shared.admission.active == 0
        second = new_id()
        assert (await start(ws, second))["header"]["name"] == "RecognitionStarted"


async def test_background_failure_closes_and_drops_late_events(gateway):
    gw = await gateway(handlers=HANDLERS)
    async with connect(gw.url) as ws:
        task = new_id()
        await start(ws, task, script="bg_fail")
        failed = await recv_event(ws)
        assert failed["header"]["name"] == "TaskFailed"
        assert failed["header"]["status"] == 41010104
        assert failed["header"]["namespace"] == "SpeechRecognizer"
        assert await _closed_code(ws) == 1000  # nothing after TaskFailed
    await _eventually(lambda: task in CLOSED)
    assert gw.shared.admission.active == 0
    assert _sessions(gw, "SpeechRecognizer", "failed") == 1


async def test_idle_timeout_names_last_directive(gateway):
    gw = await gateway(handlers=HANDLERS, idle_timeout=0.3)
    async with connect(gw.url) as ws:
        task = new_id()
        await start(ws, task)
        failed = await recv_event(ws)
        header = failed["header"]
        assert header["name"] == "TaskFailed"
        assert header["status"] == 40000004
        assert header["namespace"] == "Default"
        assert header["task_id"] == task
        assert header["status_text"] == (
            "Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time, "
            "the last directive is 'StartRecognition'!"
        )
        assert await _closed_code(ws) == 1000
    assert _sessions(gw, "SpeechRecognizer", "idle_timeout") == 1
    assert gw.shared.admission.active == 0


async def test_idle_timeout_without_task(gateway):
    gw = await gateway(handlers=HANDLERS, idle_timeout=0.2)
    async with connect(gw.url) as ws:
        failed = await recv_event(ws)
        assert failed["header"]["status"] == 40000004
        assert failed["header"]["namespace"] == "Default"
        assert await _closed_code(ws) == 1000


async def test_pings_count_as_client_data(gateway):
    gw = await gateway(handlers=HANDLERS, idle_timeout=0.4)
    async with connect(gw.url, ping_interval=None) as ws:
        task = new_id()
        await start(ws, task)
        for _ in range(10):  # 1 s of pings, 2.5 idle timeouts
            await ws.ping()
            await asyncio.sleep(0.1)
        await ws.send(command("StopRecognition", task))
        assert (await recv_event(ws))["header"]["name"] == "RecognitionCompleted"


async def test_unknown_appkey_is_40020105(gateway):
    gw = await gateway(handlers=HANDLERS, token=["tok"], appkey=["good:en"])
    headers = {"X-NLS-Token": "tok"}
    async with connect(gw.url, additional_headers=headers) as ws:
        failed = await start(ws, new_id(), appkey="bad")
        assert failed["header"]["name"] == "TaskFailed"
        assert failed["header"]["status"] == 40020105
        assert failed["header"]["status_text"] == "Meta:APPKEY_NOT_EXIST:Appkey not exist!"
        assert await _closed_code(ws) == 1000
    async with connect(gw.url, additional_headers=headers) as ws:
        task = new_id()
        await ws.send(command("StartRecognition", task, appkey="good", payload={}))
        assert (await recv_event(ws))["header"]["name"] == "RecognitionStarted"
    assert _sessions(gw, "SpeechRecognizer", "rejected") == 1


async def test_config_vocabularies_and_appkey_asr_model_reach_the_engine(gateway):
    asr = ScriptedAsr()
    credentials = Credentials(
        appkeys={"proj": Project(language="zh", asr_model="/models/proj")}, tokens=frozenset({"t"})
    )
    gw = await gateway(
        engines=Engines(asr=asr, vad=ScriptedVad()),
        handlers=TASK_HANDLERS,
        credentials=credentials,
        vocabularies={"v1": ("达摩院",)},
    )
    headers = {"X-NLS-Token": "t"}
    async with connect(gw.url, additional_headers=headers) as ws:
        task = new_id()
        payload = {"format": "pcm", "vocabulary_id": "v1"}
        await ws.send(command("StartRecognition", task, appkey="proj", payload=payload))
        assert (await recv_event(ws))["header"]["name"] == "RecognitionStarted"
        for chunk in frames(pcm(np.concatenate([tone(1.0), silence(1.0)]))):
            await ws.send(chunk)
        await ws.send(command("StopRecognition", task, appkey="proj"))
        assert (await recv_event(ws))["header"]["name"] == "RecognitionCompleted"
    assert asr.options and all(
        o.hotwords == ("达摩院",) and o.model == "/models/proj" and o.language == "zh"
        for o in asr.options
    )
    async with connect(gw.url, additional_headers=headers) as ws:
        payload = {"format": "pcm", "vocabulary_id": "v2"}
        await ws.send(command("StartRecognition", new_id(), appkey="proj", payload=payload))
        failed = await recv_event(ws)
        assert failed["header"]["name"] == "TaskFailed"
        assert failed["header"]["status"] == 40000003
        assert (
            failed["header"]["status_text"]
            == "Gateway:PARAMETER_INVALID:Invalid vocabulary_id 'v2'!"
        )


@pytest.mark.parametrize("limit", ["max_concurrent_tasks", "max_live_streams"])
async def test_over_limit_is_40000005_while_others_keep_working(gateway, limit):
    gw = await gateway(handlers=HANDLERS, **{limit: 1})
    async with connect(gw.url) as busy, connect(gw.url) as extra:
        task = new_id()
        await start(busy, task)
        refused = await start(extra, new_id())
        assert refused["header"]["name"] == "TaskFailed"
        assert refused["header"]["status"] == 40000005
        assert refused["header"]["namespace"] == "Default"
        assert refused["header"]["status_text"] == "Gateway:TOO_MANY_REQUESTS:Too many requests!"
        assert await _closed_code(extra) == 1000
        await busy.send(b"\x01" * 640)
        await busy.send(command("StopRecognition", task))
        assert (await recv_event(busy))["header"]["name"] == "RecognitionCompleted"
    async with connect(gw.url) as again:
        assert (await start(again, new_id()))["header"]["name"] == "RecognitionStarted"


@pytest.mark.parametrize(
    ("script", "status", "text"),
    [
        ("crash", 50000000, "Gateway:SERVER_ERROR:Server error!"),
        ("task_error", 40000003, "Gateway:PARAMETER_INVALID:scripted bad start"),
    ],
)
async def test_handler_error_fails_only_its_task(gateway, script, status, text, caplog):
    gw = await gateway(handlers=HANDLERS)
    async with connect(gw.url) as good, connect(gw.url) as bad:
        task = new_id()
        await start(good, task)
        failed = await start(bad, new_id(), script=script)
        assert failed["header"]["name"] == "TaskFailed"
        assert failed["header"]["status"] == status
        assert failed["header"]["namespace"] == "SpeechRecognizer"
        assert failed["header"]["status_text"] == text
        assert await _closed_code(bad) == 1000
        await good.send(command("StopRecognition", task))
        assert (await recv_event(good))["header"]["name"] == "RecognitionCompleted"
    if script == "crash":
        assert "scripted crash" in caplog.text  # logged with its traceback
        assert _sessions(gw, "SpeechRecognizer", "server_error") == 1


async def test_malformed_json_fails_and_closes(gateway):
    gw = await gateway(handlers=HANDLERS)
    async with connect(gw.url) as ws:
        await ws.send("{not json")
        failed = await recv_event(ws)
        assert failed["header"]["status"] == 40000002
        assert await _closed_code(ws) == 1000


async def test_client_vanishing_frees_task_within_a_second(gateway):
    gw = await gateway(handlers=HANDLERS)
    ws = await connect(gw.url)
    task = new_id()
    await start(ws, task, script="hang")
    await ws.send(command("StopRecognition", task))
    await _eventually(lambda: gw.shared.admission.active == 1)
    await asyncio.sleep(0.05)  # the consumer is now inside the hanging on_stop
    ws.transport.abort()
    await _eventually(lambda: gw.shared.admission.active == 0, timeout=1.0)
    await _eventually(lambda: task in CLOSED, timeout=1.0)
    assert gw.metrics.registry.get_sample_value("nls_active_tasks") == 0
    assert _sessions(gw, "SpeechRecognizer", "client_disconnect") == 1


async def test_graceful_shutdown_lets_tasks_finish_then_fails_the_rest(gateway):
    gw = await gateway(handlers=HANDLERS)
    quick = await connect(gw.url)
    stuck = await connect(gw.url)
    idle = await connect(gw.url)
    quick_task, stuck_task = new_id(), new_id()
    await start(quick, quick_task, script="slow_stop", delay=0.3)
    await start(stuck, stuck_task, script="hang")
    await quick.send(command("StopRecognition", quick_task))
    await stuck.send(command("StopRecognition", stuck_task))
    await asyncio.sleep(0.05)
    port = gw.port
    shutdown = asyncio.create_task(gw.shutdown(grace=1.0))
    assert await _closed_code(idle) == 1001  # no task: closed at once
    done = await recv_event(quick)
    assert done["header"]["name"] == "RecognitionCompleted"
    assert await _closed_code(quick) in (1000, 1001)
    # While the stuck task still has grace left, the replica stays reachable and says
    # no: health 503 (balancers move on), a new handshake 503, metrics still served.
    assert not shutdown.done()
    status, _, body = await http(gw, "GET", "/healthz")
    assert (status, body) == (503, b"Server is shutting down.\n")
    with pytest.raises(InvalidStatus) as refused:
        await connect(gw.url)
    assert refused.value.response.status_code == 503
    assert (await http(gw, "GET", "/metrics"))[0] == 200
    failed = await recv_event(stuck, timeout=3.0)
    assert failed["header"]["name"] == "TaskFailed"
    assert failed["header"]["status"] == 50000000
    assert "shutting down" in failed["header"]["status_text"]
    await asyncio.wait_for(shutdown, 5.0)
    assert gw.shared.admission.active == 0
    with pytest.raises(OSError):  # drained: the listener is closed
        await asyncio.open_connection("127.0.0.1", port)
    for ws in (quick, stuck, idle):
        await ws.close()


async def test_events_keep_protocol_field_types(gateway):
    gw = await gateway(handlers=HANDLERS)
    async with connect(gw.url) as ws:
        await ws.send(command("StartRecognition", new_id(), payload={}))
        raw = await asyncio.wait_for(ws.recv(), 5)
        header = json.loads(raw)["header"]
        assert isinstance(header["status"], int)
        assert header["status_text"] == "Gateway:SUCCESS:Success."
        assert len(header["message_id"]) == 32
