from __future__ import annotations

import pytest

from nls_gateway.tasks.base import TaskError
from nls_gateway.tasks.text import Pause, SentenceAssembler, Speech, parse, split_sentences


def test_plain_text_is_one_piece() -> None:
    assert parse("你好<b>") == [Speech("你好<b>", (0, 1, 2, 3, 4))]


def test_ssml_break_sub_entities_and_indexes() -> None:
    text = '<speak>你好<break time="1.5s"/>A&amp;B<sub alias="世贸">WTO</sub><s>再见</s></speak>'
    items = parse(text)
    assert items[0] == Speech("你好", (7, 8))
    assert items[1] == Pause(1500)
    speech = items[2]
    assert isinstance(speech, Speech) and speech.text == "A&B世贸"
    assert text[speech.index[0]] == "A" and text[speech.index[1]] == "&"
    assert text[speech.index[3] :].startswith("<sub")
    assert items[3] == Speech("再见", (text.index("再"), text.index("见")))


@pytest.mark.parametrize(
    ("attrs", "ms"),
    [('time="300ms"', 300), ("strength='strong'", 700), ("", 400), ('time="20s"', 10_000)],
)
def test_ssml_break_durations(attrs: str, ms: int) -> None:
    assert parse(f"<speak>a<break {attrs}/>b</speak>")[1] == Pause(ms)


@pytest.mark.parametrize(
    "text",
    [
        "<speak>你好<prosody rate='2'>x</prosody></speak>",
        "<speak>你好",
        "<speak>你好</s></speak>",
        "<speak>a</speak>tail",
        "<speak>a < b</speak>",
        "<speak>a &bogus; b</speak>",
        '<speak>a<break time="soon"/></speak>',
    ],
)
def test_illegal_ssml(text: str) -> None:
    with pytest.raises(TaskError) as err:
        parse(text)
    assert err.value.status == 41020001
    assert "Illegal ssml text" in err.value.status_text


def test_split_sentences_covers_text() -> None:
    text = "你好。今天3.14度! Yes. ok\n“走吧！”他说"
    spans = split_sentences(text)
    assert [text[b:e] for b, e in spans] == [
        "你好。",
        "今天3.14度! ",
        "Yes. ",
        "ok\n",
        "“走吧！”",
        "他说",
    ]


def test_assembler_streams_sentences() -> None:
    a = SentenceAssembler()
    assert a.add("你好，世") == []
    assert a.add("界。今天") == ["你好，世界。"]
    assert a.pending == "今天"
    assert a.add("好.") == []  # "." waits for a following space
    assert a.add(" 再") == ["今天好. "]
    assert a.flush() == ["再"]
    assert a.flush() == []


def test_assembler_cuts_long_text_at_a_comma() -> None:
    a = SentenceAssembler()
    out = a.add("字" * 150 + "，" + "字" * 100)
    assert out == ["字" * 150 + "，"]
