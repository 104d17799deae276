"""docs/deploy.md's scale-out recipe, run: two `nls serve` replicas (real engines, one
``--token-secret``) behind a real nginx with deploy/nginx/nls-gateway.conf.template.

What a user of the recipe relies on: a CreateToken token minted through nginx works on
every replica; every namespace's session passes through nginx unchanged, with our drop-in
SDK and the official SDK 1.0.2; ``least_conn`` spreads live sessions; a full replica's
40000005 reaches the client as that code; a killed replica's clients hear about it within
a second and new sessions go to the survivor; a SIGTERMed replica drains (health and
handshakes 503, nginx moves on) while its running session finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.protocol import State
from websockets.sync.client import connect as ws_connect

import nls
import nls.asyncio as nlsa
from evaldata import EVAL_DIR, ROOT, cer, reference
from nls.exception import ConnectionUnavailable
from nls.token import getToken

from .cluster import AKID, AKSECRET, APPKEY, Cluster, http_get

SHORT = "zh_dev_05_wenetspeech_TEST_NET_Y0000000000_S00000.wav"  # 2.3 s
LONG = "zh_dev_06_funasr_asr_example_zh.wav"  # 5.5 s
OFFICIAL = Path(os.environ.get("NLS_OFFICIAL_SDK_DIR") or ROOT / ".venv" / "official-nls-sdk")
CHUNK = 3200  # 100 ms of 16 kHz PCM


def _pcm(name: str) -> bytes:
    with wave.open(str(EVAL_DIR / name), "rb") as w:
        return w.readframes(w.getnframes())


class Recorder:
    """Callback calls as (name, args, monotonic time), thread-safe."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], float]] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def __getattr__(self, name: str) -> Any:
        def callback(*args: Any) -> None:
            with self.lock:
                self.calls.append((name, args, time.monotonic()))
            if name == "on_close":
                self.closed.set()

        return callback

    def names(self) -> list[str]:
        return [n for n, _, _ in self.calls]

    def first(self, name: str) -> tuple[tuple[Any, ...], float]:
        return next((a, t) for n, a, t in self.calls if n == name)

    def status(self) -> int:
        """The NLS status of the on_error JSON."""
        (message, *_), _ = self.first("on_error")
        return int(json.loads(message)["header"]["status"])


class LiveStream:
    """A drop-in NlsSpeechTranscriber sending a file at 2× real time from a thread."""

    opened: list[LiveStream] = []
    """Every stream of the running test (``_close_streams`` shuts them after it)."""

    def __init__(self, url: str, token: str, pcm: bytes) -> None:
        LiveStream.opened.append(self)
        self.rec = Recorder()
        self.pcm = pcm
        self.st = nls.NlsSpeechTranscriber(
            url=url,
            token=token,
            appkey=APPKEY,
            on_start=self.rec.on_start,
            on_sentence_end=self.rec.on_sentence_end,
            on_completed=self.rec.on_completed,
            on_error=self.rec.on_error,
            on_close=self.rec.on_close,
        )
        self.sent = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        return bool(self.st.start(aformat="pcm", enable_intermediate_result=True))

    def stream(self) -> None:
        """Send the audio (first 0.5 s at once, so the task is live), then stop."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def join(self, timeout: float = 20.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream did not end"

    def text(self) -> str:
        return "".join(
            json.loads(args[0])["payload"]["result"]
            for name, args, _ in self.rec.calls
            if name == "on_sentence_end"
        )

    def _run(self) -> None:
        for i in range(0, len(self.pcm), CHUNK):
            if not self.st.send_audio(self.pcm[i : i + CHUNK]):
                break
            if i >= 5 * CHUNK:
                self.sent.set()
                time.sleep(0.05)
        self.sent.set()
        self.st.send_audio(b"\x00" * 8 * CHUNK)  # trailing silence ends the sentence
        self.st.stop(timeout=10)
        self.rec.closed.wait(5)
        self.st.shutdown()


def _until(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _live_on_each(cluster: Cluster, token: str, name: str) -> tuple[LiveStream, LiveStream, int]:
    """Two live streams of ``name`` through nginx, one on each replica, in the order they
    were opened, and the index of the first one's replica."""
    first = LiveStream(cluster.nginx.url, token, _pcm(name))
    assert first.start()
    _until(lambda: sum(cluster.with_tasks()) == 1)
    on_first = cluster.with_tasks().index(1)
    second = LiveStream(cluster.nginx.url, token, _pcm(name))
    assert second.start(), second.rec.calls
    # least_conn: the second session goes to the replica without one.
    _until(lambda: cluster.with_tasks() == [1, 1])
    return first, second, on_first


@pytest.fixture(autouse=True)
def _close_streams() -> Iterator[None]:
    """A failed test's live streams end with it instead of filling the next test's budget."""
    yield
    while LiveStream.opened:
        LiveStream.opened.pop().st.shutdown()


@pytest.fixture(scope="module")
def token(_cluster: Cluster) -> str:
    """A CreateToken token minted through nginx (whichever replica answered)."""
    return getToken(AKID, AKSECRET, url=_cluster.nginx.http_url)


def test_token_minted_through_nginx_works_on_both_replicas(cluster: Cluster, token: str) -> None:
    pcm = _pcm(SHORT)
    for replica in cluster.replicas:
        text = asyncio.run(nlsa.recognize(pcm, url=replica.url, appkey=APPKEY, token=token))
        assert cer(reference(SHORT), text) <= 0.3, text
    # The replicas really check tokens (not dev mode): a made-up one is refused via nginx.
    with pytest.raises(ConnectionUnavailable) as info:
        asyncio.run(nlsa.recognize(pcm, url=cluster.nginx.url, appkey=APPKEY, token="made-up"))
    assert info.value.http_status == 403
    assert http_get(cluster.nginx.http_url + "/healthz") == (200, b"OK\n")


def test_dropin_sessions_of_every_namespace_pass_through_nginx(
    cluster: Cluster, token: str
) -> None:
    url = cluster.nginx.url
    pcm = _pcm(SHORT)
    rec = Recorder()
    sr = nls.NlsSpeechRecognizer(
        url=url,
        token=token,
        appkey=APPKEY,
        on_completed=rec.on_completed,
        on_error=rec.on_error,
        on_close=rec.on_close,
    )
    assert sr.start(aformat="pcm", enable_intermediate_result=True)
    for i in range(0, len(pcm), CHUNK):
        sr.send_audio(pcm[i : i + CHUNK])
    assert sr.stop(timeout=10)
    assert rec.closed.wait(5) and "on_error" not in rec.names()
    (message, *_), _ = rec.first("on_completed")
    assert cer(reference(SHORT), json.loads(message)["payload"]["result"]) <= 0.3

    stream = LiveStream(url, token, pcm)
    assert stream.start()
    stream.stream()
    stream.join()
    assert "on_completed" in stream.rec.names() and "on_error" not in stream.rec.names()
    assert cer(reference(SHORT), stream.text()) <= 0.3, stream.text()

    audio: list[bytes] = []
    rec = Recorder()
    tts = nls.NlsSpeechSynthesizer(
        url=url,
        token=token,
        appkey=APPKEY,
        on_data=lambda data, *a: audio.append(data),
        on_completed=rec.on_completed,
        on_error=rec.on_error,
        on_close=rec.on_close,
    )
    assert tts.start("你好。", voice="xiaoyun", aformat="pcm", sample_rate=16000)
    assert rec.closed.wait(5) and "on_error" not in rec.names()
    assert 0.3 < len(b"".join(audio)) / 32000 < 5

    flowing: list[bytes] = []
    rec = Recorder()
    fl = nls.NlsStreamInputTtsSynthesizer(
        url=url,
        token=token,
        appkey=APPKEY,
        on_data=lambda data, *a: flowing.append(data),
        on_completed=rec.on_completed,
        on_error=rec.on_error,
        on_close=rec.on_close,
    )
    assert fl.startStreamInputTts(voice="xiaoyun", sample_rate=16000)
    assert fl.sendStreamInputTts("你")
    assert fl.sendStreamInputTts("好。")
    assert fl.stopStreamInputTts()
    assert rec.closed.wait(5) and "on_error" not in rec.names(), rec.calls
    assert 0.3 < len(b"".join(flowing)) / 32000 < 5
    completed = [
        cluster.replicas[i].metric("nls_sessions_total", {"outcome": "completed"}) for i in (0, 1)
    ]
    assert sum(completed) >= 6  # the two recognitions above and these four


def test_official_sdk_through_nginx(cluster: Cluster, token: str, tmp_path: Path) -> None:
    assert (OFFICIAL / "nls" / "__init__.py").is_file(), f"run scripts/env.sh: {OFFICIAL}"
    (tmp_path / "speech.pcm").write_bytes(_pcm(SHORT))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("official_session.py")), cluster.nginx.url]
        + [token, APPKEY, str(tmp_path / "speech.pcm")],
        env={**os.environ, "PYTHONPATH": str(OFFICIAL)},
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert proc.returncode == 0, proc.stderr
    calls = {r["task"]: r["calls"] for r in map(json.loads, proc.stdout.splitlines())}
    for task in ("recognizer", "transcriber", "synthesizer"):
        names = [name for name, _ in calls[task]]
        assert "completed" in names and "error" not in names, (task, calls[task])
    completed = next(args for name, args in calls["recognizer"] if name == "completed")
    assert cer(reference(SHORT), json.loads(completed[0])["payload"]["result"]) <= 0.3
    text = "".join(
        json.loads(a[0])["payload"]["result"] for n, a in calls["transcriber"] if n == "end"
    )
    assert cer(reference(SHORT), text) <= 0.3, text
    seconds = sum(args[0] for name, args in calls["synthesizer"] if name == "data") / 32000
    assert 0.3 < seconds < 5, seconds


def test_least_conn_spreads_sessions_and_a_full_cluster_answers_40000005(
    cluster: Cluster, token: str
) -> None:
    first, second, _ = _live_on_each(cluster, token, SHORT)  # one on each replica
    # The second session ends; the next goes where there is room. Round robin would send
    # it to the first one's replica (its turn), which is full.
    second.stream()
    second.join()
    assert "on_completed" in second.rec.names(), second.rec.calls
    assert cer(reference(SHORT), second.text()) <= 0.3, second.text()
    _until(lambda: sum(cluster.with_tasks()) == 1)
    third = LiveStream(cluster.nginx.url, token, _pcm(SHORT))
    assert third.start(), third.rec.calls
    _until(lambda: cluster.with_tasks() == [1, 1])
    # Both replicas are at their budget (--max-live-streams 1): one more session is
    # refused with the NLS code, at once, not left hanging.
    rec = Recorder()
    sr = nls.NlsSpeechRecognizer(
        url=cluster.nginx.url,
        token=token,
        appkey=APPKEY,
        on_error=rec.on_error,
        on_close=rec.on_close,
    )
    begun = time.monotonic()
    assert sr.start(aformat="pcm", timeout=5) is False
    assert time.monotonic() - begun < 1.0
    assert rec.closed.wait(2) and rec.status() == 40000005
    refused = [r.metric("nls_admissions_total", {"decision": "capacity"}) for r in cluster.replicas]
    assert sum(refused) >= 1
    for stream in (first, third):
        stream.stream()
    for stream in (first, third):
        stream.join()
        assert "on_completed" in stream.rec.names(), stream.rec.calls
        assert cer(reference(SHORT), stream.text()) <= 0.3, stream.text()


def test_killed_replica_fails_its_clients_within_a_second_and_the_other_serves(
    cluster: Cluster, token: str
) -> None:
    doomed_stream, surviving_stream, on_doomed = _live_on_each(cluster, token, LONG)
    doomed, survivor = cluster.replicas[on_doomed], cluster.replicas[1 - on_doomed]
    for stream in (doomed_stream, surviving_stream):
        stream.stream()
    assert doomed_stream.sent.wait(5)
    time.sleep(0.3)  # mid-stream
    killed_at = time.monotonic()
    doomed.kill()
    assert doomed_stream.rec.closed.wait(3)
    names = doomed_stream.rec.names()
    assert "on_error" in names and names[-1] == "on_close", names
    _, error_at = doomed_stream.rec.first("on_error")
    _, close_at = doomed_stream.rec.first("on_close")
    assert error_at - killed_at < 1.0 and close_at - killed_at < 1.0
    doomed_stream.join()
    # The other replica's session goes on undisturbed …
    surviving_stream.join()
    assert "on_error" not in surviving_stream.rec.names(), surviving_stream.rec.calls
    assert cer(reference(LONG), surviving_stream.text()) <= 0.3, surviving_stream.text()
    # … and new sessions go to it (nginx skips the refused connection).
    before = survivor.metric("nls_sessions_total", {"outcome": "completed"})
    for _ in range(2):
        text = asyncio.run(
            nlsa.recognize(_pcm(SHORT), url=cluster.nginx.url, appkey=APPKEY, token=token)
        )
        assert cer(reference(SHORT), text) <= 0.3, text
    assert survivor.metric("nls_sessions_total", {"outcome": "completed"}) == before + 2


def test_sigterm_drains_a_replica_while_nginx_moves_on(cluster: Cluster, token: str) -> None:
    draining, other = cluster.replicas
    stream = LiveStream(draining.url, token, _pcm(LONG))  # directly on the drained one
    assert stream.start()
    # One idle connection through nginx on each replica (least_conn): once the draining
    # replica closes its idle one, nginx's next pick is the draining replica, which
    # answers 503, and nginx retries on the other (proxy_next_upstream http_503).
    with contextlib.ExitStack() as stack:
        headers = {"X-NLS-Token": token}
        idle = [stack.enter_context(ws_connect(cluster.nginx.url, additional_headers=headers))]
        idle.append(stack.enter_context(ws_connect(cluster.nginx.url, additional_headers=headers)))
        _until(lambda: [r.metric("nls_active_connections") for r in cluster.replicas] == [2, 1])
        stream.stream()
        assert stream.sent.wait(5)
        draining.terminate()
        _until(lambda: http_get(draining.http_url + "/healthz")[0] == 503)
        _until(lambda: any(ws.protocol.state is State.CLOSED for ws in idle))
        assert http_get(draining.http_url + "/healthz") == (503, b"Server is shutting down.\n")
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(draining.url, additional_headers={"X-NLS-Token": token})
        assert refused.value.response.status_code == 503
        # Through nginx a new session still succeeds: on the other replica.
        before = other.metric("nls_sessions_total", {"outcome": "completed"})
        text = asyncio.run(
            nlsa.recognize(_pcm(SHORT), url=cluster.nginx.url, appkey=APPKEY, token=token)
        )
        assert cer(reference(SHORT), text) <= 0.3, text
        assert other.metric("nls_sessions_total", {"outcome": "completed"}) == before + 1
        assert draining.metric("nls_rejected_handshakes_total", {"reason": "shutting_down"}) >= 2
        # The running session finishes normally, then the replica exits 0.
        stream.join()
        assert "on_error" not in stream.rec.names(), stream.rec.calls
        assert cer(reference(LONG), stream.text()) <= 0.3, stream.text()
        assert draining.proc is not None and draining.proc.wait(10) == 0
