"""Filler removal (disfluency=true) and word spans: the text rules on their own."""

from __future__ import annotations

import pytest

from nls_gateway.engines.text.disfluency import (
    filler_spans,
    kept_words,
    remove_fillers,
    remove_spans,
)
from nls_gateway.engines.text.word_align import word_spans


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Mandarin hesitation sounds, with the pause mark they brought
        ("嗯，我们先讨论一下。", "我们先讨论一下。"),
        ("我们先讨论，呃，然后再说。", "我们先讨论，然后再说。"),
        ("嗯嗯，好的。", "好的。"),
        ("好的，嗯。", "好的。"),
        ("嗯那个，我们走吧", "我们走吧"),
        ("你好 嗯 我们", "你好我们"),
        ("嗯，那个，我们先讨论销售问题。呃，然后再说商场。", "我们先讨论销售问题。然后再说商场。"),
        # 额 only standing alone; 啊 / 哦 only opening a clause before a pause
        ("金额是多少？额，我不知道。", "金额是多少？我不知道。"),
        ("额度用完了。", "额度用完了。"),
        ("好啊。啊，这个问题很难。", "好啊。这个问题很难。"),
        ("是啊，我也这么想。", "是啊，我也这么想。"),
        ("哦，原来如此。", "原来如此。"),
        # 那个 / 这个 / 就是: hesitations only when clause-initial before a pause, or repeated
        ("那个，我想问一下。", "我想问一下。"),
        ("那个人是谁？", "那个人是谁？"),
        ("我要那个，不要这个。", "我要那个，不要这个。"),
        ("那个那个人来了。", "那个人来了。"),
        ("这个，这个方案不错。", "这个方案不错。"),
        ("就是，就是说我们要努力。", "就是说我们要努力。"),
        ("就是他。", "就是他。"),
        ("这个经理说完了，这个小伙伴。", "这个经理说完了，这个小伙伴。"),
        # English, whole words, any case but all capitals; uh-huh is an answer
        ("Well, um, the meeting is, uh, moved to Friday.", "Well the meeting is moved to Friday."),
        ("Um, I think so.", "I think so."),
        ("It was good. Uh, we left early.", "It was good. We left early."),
        ("So um I think, uh.", "So I think."),
        ("Hmm, erm, yes.", "Yes."),
        ("uh-huh, right.", "uh-huh, right."),
        ("UM is a university. The summer umbrella.", "UM is a university. The summer umbrella."),
        ("To err is human.", "To err is human."),
        # nothing but fillers
        ("嗯。", ""),
        ("Um.", ""),
        ("", ""),
    ],
)
def test_remove_fillers(text: str, expected: str) -> None:
    assert remove_fillers(text) == expected


def test_clean_text_is_returned_unchanged() -> None:
    text = "秋天总是那么富有诗意。树叶渐渐变红，  街道旁的银杏树也开始落叶。"
    assert filler_spans(text) == []
    assert remove_spans(text, []) is text


def test_kept_words_drop_exactly_the_fillers() -> None:
    text = "嗯，那个，我们那个人"
    words = ["嗯", "那个", "我", "们", "那个", "人"]
    assert kept_words(text, words, filler_spans(text)) == [False, False, True, True, True, True]
    text = "Well, um, the meeting is, uh, moved."
    words = ["Well", "um", "the", "meeting", "is", "uh", "moved"]
    keep = kept_words(text, words, filler_spans(text))
    assert [w for w, k in zip(words, keep, strict=True) if not k] == ["um", "uh"]


def test_word_spans_follow_the_text() -> None:
    assert word_spans("秋天，总是。", ["秋天", "总", "是"]) == [(0, 2), (3, 4), (4, 5)]
    # case-insensitive; a word rewritten in the text (ITN: 二十 → 20) is not found, and
    # the words after it still are
    assert word_spans("Hello, World", ["hello", "world"]) == [(0, 5), (7, 12)]
    assert word_spans("我有20个", ["我", "有", "二", "十", "个"]) == [
        (0, 1),
        (1, 2),
        None,
        None,
        (4, 5),
    ]
    # a repeated word is found at its own place, not the first occurrence
    assert word_spans("那么那么", ["那么", "那么"]) == [(0, 2), (2, 4)]
