"""``nls_gateway.cli.output``: SRT/VTT/JSON formatting and error lines (pure, no engines)."""

from __future__ import annotations

import json

from nls.exception import ConnectionUnavailable, TaskFailedError
from nls.protocol import SentenceEnd, TranscriptionStarted
from nls.protocol.messages import Header
from nls_gateway.cli.output import SentenceWriter, error_line, srt_timestamp, vtt_timestamp


def _sentence(index: int, begin: int, end: int, text: str) -> SentenceEnd:
    payload = {"index": index, "begin_time": begin, "time": end, "result": text}
    header = {"name": "SentenceEnd", "namespace": "SpeechTranscriber", "status": 20000000}
    raw = json.dumps({"header": header, "payload": payload}, ensure_ascii=False)
    return SentenceEnd(
        header=Header(name="SentenceEnd", namespace="SpeechTranscriber", task_id="t"),
        payload=payload,
        raw=raw,
    )


def test_timestamps_use_the_formats_separators():
    assert srt_timestamp(3_723_004) == "01:02:03,004"
    assert vtt_timestamp(3_723_004) == "01:02:03.004"
    assert srt_timestamp(-5) == "00:00:00,000"


def test_srt_cues_are_numbered_and_timed_by_sentence_events():
    writer = SentenceWriter("srt")
    out = writer.header()
    out += writer.event(_sentence(1, 500, 4781, "广州市房地产中介协会分析"))
    out += writer.event(_sentence(2, 5781, 9985, " 甚至出现交易几乎停滞的情况 "))
    assert out == (
        "1\n00:00:00,500 --> 00:00:04,781\n广州市房地产中介协会分析\n\n"
        "2\n00:00:05,781 --> 00:00:09,985\n甚至出现交易几乎停滞的情况\n\n"
    )


def test_vtt_has_its_signature_and_skips_empty_sentences():
    writer = SentenceWriter("vtt")
    out = (
        writer.header()
        + writer.event(_sentence(1, 0, 0, "  "))
        + writer.event(_sentence(2, 1000, 2500, "你好"))
    )
    assert out == "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n你好\n\n"


def test_cues_stay_monotone_when_the_server_reports_overlap():
    writer = SentenceWriter("srt")
    writer.event(_sentence(1, 2000, 3000, "a"))
    cue = writer.event(_sentence(2, 1500, 1000, "b"))
    assert "00:00:02,000 --> 00:00:02,000" in cue


def test_text_and_json_formats():
    assert SentenceWriter("text").event(_sentence(1, 0, 10, "你好。")) == "你好。\n"
    started = TranscriptionStarted(
        header=Header(name="TranscriptionStarted", namespace="SpeechTranscriber", task_id="t"),
        payload={},
        raw='{"header": {"name": "TranscriptionStarted"}, "payload": {}}',
    )
    assert SentenceWriter("text").event(started) == ""
    line = SentenceWriter("json").event(started)
    assert line.endswith("\n") and json.loads(line)["header"]["name"] == "TranscriptionStarted"


def test_error_lines_carry_the_nls_status():
    failed = TaskFailedError(40000004, "Gateway:IDLE_TIMEOUT:no data", "t")
    assert error_line(failed) == "error 40000004: Gateway:IDLE_TIMEOUT:no data"
    refused = ConnectionUnavailable(
        "rejected", http_status=403, body="Meta:ACCESS_DENIED:The token 'x' is invalid!\n"
    )
    assert error_line(refused) == "error 40000001: Meta:ACCESS_DENIED:The token 'x' is invalid!"
    assert error_line(ConnectionUnavailable("cannot connect")) == "error: cannot connect"
