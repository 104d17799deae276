"""Whisper ASR on CTranslate2 (int8): Whisper base for ``zh``/``auto``, tiny.en for ``en``.

This module owns the segment decoder the gateway's recognizer and transcriber call: the
short-encoder decode path, batching, n-best choice, the speech/no-speech decision, word
timings and confidence. Its models (which directory, loaded once) are
:mod:`.whisper_models`'s, the text guards against loops and restarts
:mod:`.whisper_guards`'s, the text rules :mod:`.text.asr_zh`'s.

Theory of operation:

* **Short encoder input.** faster-whisper pads every input to 3000 mel frames (30 s);
  CTranslate2's encoder also accepts shorter inputs. We feed clip length + ``PAD_FRAMES``
  frames, which is ~4× faster at similar greedy accuracy (engines.md Addendum). When that
  decode is empty or degenerate (a repetition loop, high compression ratio) the segment is
  decoded again from the padded 30 s input, the form Whisper was trained on.
* **Silence and noise give "".** Digital silence is caught by a level check; otherwise a
  decode is dropped when Whisper's no-speech probability is high and its log-probability
  low, when it only echoes the prompt, or when it stays degenerate; doubtful decodes are
  confirmed with Silero VAD, which is too slow (RTF ~0.03) to run on every segment.
* **Beam search for finals, n-best picked with guards and a word LM.** Final results use
  beam search (default 10) and ask for the whole n-best list: a hypothesis that loops or
  restarts itself (beam search on the short input does that, engines.md Addendum) is
  trimmed or passed over for the next one. For ``zh`` each survivor is first respelt with
  likelier same-sounding words by a word-trigram LM (``text.homophones``: Whisper base
  hears syllables and tones well and writes the wrong characters for them), then ranked
  by Whisper's summed log-probability plus the weighted LM score. Without the trigram LM
  (an OS package, ``ZH_LM``) the unigram model over jieba's dictionary (``text.word_lm``)
  ranks them unchanged, and a warning says so. Partial results stay greedy: they are
  re-decoded every few hundred ms.
* **Hot words.** ``AsrOptions.hotwords`` go into the prompt, and when a final's n-best
  list is ranked each hot word a hypothesis contains earns ``HOTWORD_BONUS`` (in summed
  log-probability units): Whisper often has the right homophone among its beams but not
  on top.
* **Per-project models.** ``AsrOptions.model`` (an appkey's ``asr_model``) names a local
  CTranslate2 Whisper directory decoded with instead of the language's default; each
  directory is loaded once and cached by path next to the defaults.
* **Simplified Chinese.** The zh prompt 以下是普通话的句子。 steers Whisper base to
  simplified characters and punctuation; OpenCC t2s catches the rest.

Synchronous and network-unaware: the packaged models' paths come from the ``locate`` it is
given (the gateway's model store), others are local directories.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nls_gateway.engines.base import (
    AsrEngine,
    AsrOptions,
    AsrResult,
    Float32Array,
    Locate,
    Word,
)
from nls_gateway.engines.text import asr_zh, digit_strings
from nls_gateway.engines.whisper_guards import (
    MAX_INPUT_S,
    degenerate,
    drop_repeat,
    hotword_hits,
    join_pieces,
    split_long,
)
from nls_gateway.engines.whisper_models import (
    BASE_MODEL,
    LANGUAGES,
    MODEL_FILES,
    TINY_EN_MODEL,
    LoadedModel,
    ModelCache,
    ZhLm,
    prefer_avx512,
)
from nls_gateway.exception import DecodeAbandoned, EngineError, EngineUnavailableError

__all__ = [
    "BASE_MODEL",
    "DEFAULT_ZH_PROMPT",
    "HOTWORD_BONUS",
    "MODEL_FILES",
    "TINY_EN_MODEL",
    "WhisperEngine",
    "create",
]

SAMPLE_RATE = 16000
DEFAULT_ZH_PROMPT = "以下是普通话的句子。"
DEFAULT_BEAM_SIZE = 10
"""Beam width for finals. Eval dev set: greedy zh CER 22.1 %, en WER 5.7 %; beam 5 15.3 %,
3.8 %; beam 10 11.0 %, 3.8 % at 1.13× the decode time per clip (the gain is the meeting
clip's: 21 → 14 errors); 8 no better than 5, 15 and 20 no better than 10 and slower."""
LM_WEIGHT = 0.1
"""Weight of the zh word-LM log-probability against Whisper's summed token log-probability.

Tuned on 8 dev files (flat optimum 0.05–0.2): worth ~1 dev character and 14 of 346
characters on the long files; small evidence, so the weight is kept low."""
LM_CHAR_BONUS = 4.0
"""Per-character bonus (in LM units) so the LM does not simply prefer shorter hypotheses."""
HOTWORD_BONUS = 3.0
"""Added to a final hypothesis's score for each distinct hot word it contains.

In nats of summed token log-probability: beams that differ by one homophone are usually
within 1–3 nats of each other, and the zh word LM (times ``LM_WEIGHT``) moves them by
about as much, so a hot word outweighs both without lifting a hypothesis that is far
worse acoustically."""
PAD_FRAMES = 100
"""Silent mel frames (10 ms each) appended after the audio in the short-input path."""

_INSTALL_HINT = "pip install 'opennls[gateway]'"
_HOP = 160
_FULL_FRAMES = 3000
_MIN_SAMPLES = SAMPLE_RATE // 10
_SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: digital silence or a muted microphone
_NO_SPEECH_PROB = 0.6
_LOGPROB_FLOOR = -1.0


def create(*, locate: Locate, **options: Any) -> AsrEngine:
    """Build the Whisper engine (models load lazily; call ``preload()`` to load now).

    Args:
        locate: the model store's ``locate`` (local path of each of :data:`MODEL_FILES`).
        **options: ``models`` (mapping ``zh``/``en``/``auto`` → CTranslate2 Whisper model
            directory, overriding the packaged ones), ``cpu_threads`` (default: all
            cores), ``compute_type`` (default ``int8``), ``beam_size`` (finals; default
            ``DEFAULT_BEAM_SIZE``, partials always greedy), ``word_timestamps`` (default
            True), ``zh_prompt``, ``lm_weight`` (zh n-best rescoring; 0 turns it off),
            ``homophone_repair`` (default True: zh finals respelt by the trigram LM),
            ``hotword_bonus`` (n-best bonus per hot word; 0 turns it off). A request's
            ``AsrOptions.model`` may name another model directory (loaded on first use).

    Raises:
        EngineUnavailableError: faster-whisper / CTranslate2 is not installed.
    """
    return WhisperEngine(locate=locate, **options)


@dataclass(slots=True)
class _Job:
    """One segment's decode: its place in the batch, audio and request."""

    index: int
    audio: Float32Array
    options: AsrOptions
    prompt: list[int]
    tokenizer: Any
    language: str


@dataclass(slots=True)
class _Hypothesis:
    """One decoded hypothesis: text tokens (no special tokens), text, mean log-probability."""

    tokens: list[int]
    text: str
    avg_logprob: float


class WhisperEngine:
    """Segment decoder over one or two Whisper models; safe to call from many threads."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        locate: Locate,
        models: Mapping[str, str | Path] | None = None,
        cpu_threads: int | None = None,
        compute_type: str = "int8",
        beam_size: int = DEFAULT_BEAM_SIZE,
        word_timestamps: bool = True,
        zh_prompt: str = DEFAULT_ZH_PROMPT,
        lm_weight: float = LM_WEIGHT,
        hotword_bonus: float = HOTWORD_BONUS,
        homophone_repair: bool = True,
    ) -> None:
        prefer_avx512()
        try:
            import ctranslate2
            import faster_whisper  # noqa: F401  (feature extractor and tokenizer)
        except ImportError as exc:
            raise EngineUnavailableError(
                f"the Whisper engine needs faster-whisper and ctranslate2: {_INSTALL_HINT}"
            ) from exc
        self._ct2 = ctranslate2
        self._zh_lm = ZhLm(locate, repair=homophone_repair)
        self._models = ModelCache(
            locate, models, threads=cpu_threads or os.cpu_count() or 1, compute_type=compute_type
        )
        self._beam_size = max(1, beam_size)
        self._word_timestamps = word_timestamps
        self._zh_prompt = zh_prompt
        self._lm_weight = lm_weight
        self._hotword_bonus = hotword_bonus
        self._vad: Any = None

    # ------------------------------------------------------------------------ public

    def preload(self, languages: Sequence[str] = LANGUAGES) -> None:
        """Load the models for ``languages`` now instead of on first use."""
        for language in languages:
            self._models.get(language)
        if "zh" in languages and self._rescores:
            self._zh_lm.get().load()

    @property
    def _rescores(self) -> bool:
        return self._beam_size > 1 and self._lm_weight > 0

    def transcribe(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        """Decode one segment of 16 kHz float32 audio (silence or noise gives "")."""
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if samples.size > MAX_INPUT_S * SAMPLE_RATE:
            pieces = split_long(samples)
            results = self.transcribe_batch(pieces, [options] * len(pieces))
            return join_pieces(results, pieces, options.language)
        return self.transcribe_batch([samples], [options])[0]

    def transcribe_batch(
        self, audios: Sequence[Float32Array], options: Sequence[AsrOptions]
    ) -> list[AsrResult]:
        """Decode several segments; those sharing a model and prompt share one call.

        Raises:
            EngineUnavailableError: a segment's ``options.model`` is not a loadable
                CTranslate2 Whisper directory (alone; in a batch of several segments it
                is raised as a RuntimeError, see below).
        """
        if len(audios) != len(options):
            raise ValueError("audios and options must have the same length")
        results = [AsrResult("")] * len(audios)
        groups: dict[tuple[Path, int, tuple[int, ...], int], list[_Job]] = {}
        for i, (audio, opts) in enumerate(zip(audios, options, strict=True)):
            samples = np.asarray(audio, dtype=np.float32).reshape(-1)
            if samples.size > MAX_INPUT_S * SAMPLE_RATE:
                results[i] = self.transcribe(samples, opts)
                continue
            if samples.size < _MIN_SAMPLES or float(np.max(np.abs(samples))) < _SILENCE_PEAK:
                continue
            try:
                model = self._models.get(opts.language, opts.model)
            except EngineError as exc:
                if len(audios) == 1:
                    raise
                # The runner fails a whole batch on an EngineError (meant for timeouts)
                # but retries segments one by one on any other error: one project's bad
                # model must fail only its own segments.
                raise RuntimeError(str(exc)) from exc
            job = self._job(i, samples, opts, model)
            beam = self._beam_size if opts.final else 1
            # Only segments of similar length share a call: padding a short segment to a
            # much longer one's length made Whisper repeat its sentence (measured on the
            # segmented en_dev_long_01: WER 3 % unbatched, 29 % batched without buckets).
            bucket = int(math.log(samples.size / _MIN_SAMPLES) / math.log(1.25))
            groups.setdefault((model.path, beam, tuple(job.prompt), bucket), []).append(job)
        for (path, beam, _, _), jobs in groups.items():
            decoded = self._decode(self._models.loaded(path), jobs, beam)
            for job, result in zip(jobs, decoded, strict=True):
                results[job.index] = result
        return results

    # ---------------------------------------------------------------------- decoding

    def _job(self, index: int, audio: Float32Array, opts: AsrOptions, model: LoadedModel) -> _Job:
        from faster_whisper.tokenizer import Tokenizer

        # An English-only model (tiny.en, maybe a project's asr_model) decodes English
        # whatever the request's language: no language token and no Chinese prompt.
        language = opts.language if model.multilingual else "en"
        if language == "auto":
            language = self._detect_language(model, audio)
        lang = language if model.multilingual and language != "auto" else None
        tokenizer = Tokenizer(model.hf_tokenizer, model.multilingual, "transcribe", lang)
        context = " ".join(filter(None, [opts.prompt, " ".join(opts.hotwords)]))
        if language == "zh":
            context = self._zh_prompt + context
            if self._rescores:
                # Unless ``preload`` ran (a gateway's engines are loaded warm), load the LM
                # (~2 s, once) with the first zh decode, a partial's as a rule.
                self._zh_lm.get()
        prompt: list[int] = []
        if context:
            prompt = [tokenizer.sot_prev, *tokenizer.encode(context)[-200:]]
        prompt += [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        return _Job(index, audio, opts, prompt, tokenizer, language)

    def _decode(self, model: LoadedModel, jobs: list[_Job], beam: int) -> list[AsrResult]:
        longest = max(job.audio.size for job in jobs)
        frames = min(_FULL_FRAMES, longest // _HOP + PAD_FRAMES)
        encoded, outputs = self._generate(model, jobs, beam, frames)
        results: list[AsrResult] = []
        for i, (job, output) in enumerate(zip(jobs, outputs, strict=True)):
            hyp = self._pick(job, output)
            job_encoded, job_frames = encoded, frames
            if degenerate(hyp.text, len(hyp.tokens), job.audio.size):
                # Guard for the short-input path: decode once more from the padded 30 s
                # input Whisper was trained on.
                job_encoded, (output,) = self._generate(model, [job], beam, _FULL_FRAMES)
                job_frames = _FULL_FRAMES
                hyp = self._pick(job, output)
                i = 0
            results.append(self._finish(model, job, hyp, output, job_encoded, i, job_frames))
        return results

    def _pick(self, job: _Job, output: Any) -> _Hypothesis:
        """The best usable hypothesis of one n-best list (a greedy decode has one).

        Each hypothesis is cut where it starts over; degenerate ones (loops, far too many
        tokens) are passed over unless nothing else is left. For zh finals the rest are
        ranked by summed token log-probability plus the weighted word-LM score.
        """
        eot = job.tokenizer.eot
        scores = list(output.scores) or [-10.0] * len(output.sequences_ids)
        hyps: list[_Hypothesis] = []
        for ids, score in zip(output.sequences_ids, scores, strict=True):
            tokens = [t for t in ids if t < eot]
            raw = job.tokenizer.decode(tokens).strip()
            # U+FFFD is a character whose bytes were cut between tokens (a decode stopped
            # by the token limit mid-character): never text to hand a client.
            text = drop_repeat(raw.replace("\ufffd", "").strip())
            if text != raw:  # re-tokenise the kept part: word alignment needs its tokens
                tokens = job.tokenizer.encode(" " + text if job.language == "en" else text)
            hyps.append(_Hypothesis(tokens, text, float(score)))
        usable = [h for h in hyps if not degenerate(h.text, len(h.tokens), job.audio.size)]
        if len(usable) <= 1:
            return (usable or hyps)[0]
        rescore = job.language == "zh" and self._lm_weight > 0
        hotwords = job.options.hotwords if self._hotword_bonus > 0 else ()
        if not rescore and not any(hotword_hits(h.text, hotwords) for h in usable):
            return usable[0]
        lm = self._zh_lm.get() if rescore else None
        # Without the LM the beam's own order (mean log-probability) is kept: scaling it
        # to one common length puts the hot-word bonus on the summed scale, like the LM's.
        common_length = max(1, len(usable[0].tokens))

        def ranked(h: _Hypothesis) -> tuple[float, _Hypothesis, str]:
            if lm is None:
                bonus = self._hotword_bonus * hotword_hits(h.text, hotwords)
                return h.avg_logprob * common_length + bonus, h, h.text
            # CTranslate2 returns the log-probability divided by the length (length
            # penalty 1); rescoring needs the sum, on the same footing as the LM. The LM
            # scores the hypothesis as respelt with likelier homophones and hot words.
            simplified = asr_zh.to_simplified(h.text)
            chars = len(asr_zh.strip_punctuation(simplified).replace(" ", ""))
            lm_score, respelt = lm.best(simplified, hotwords)
            lm_score += LM_CHAR_BONUS * chars
            bonus = self._hotword_bonus * hotword_hits(respelt, hotwords)
            total = h.avg_logprob * max(1, len(h.tokens)) + self._lm_weight * lm_score + bonus
            return total, h, respelt if respelt != simplified else h.text

        _, best, text = max((ranked(h) for h in usable), key=lambda item: item[0])
        if text == best.text:
            return best
        # Re-tokenise the respelt text: word alignment needs its tokens.
        return _Hypothesis(job.tokenizer.encode(text), text, best.avg_logprob)

    def _generate(
        self, model: LoadedModel, jobs: list[_Job], beam: int, frames: int
    ) -> tuple[Any, list[Any]]:
        # Zero-pad in the audio domain (as Whisper's own log_mel_spectrogram does) so
        # every item in the batch has the same number of frames.
        n_samples = frames * _HOP
        mels = []
        for job in jobs:
            padded = np.zeros(n_samples, dtype=np.float32)
            padded[: min(job.audio.size, n_samples)] = job.audio[:n_samples]
            mels.append(model.features(padded, padding=0)[:, :frames])
        batch = np.ascontiguousarray(np.stack(mels).astype(np.float32))
        _abandon_if_asked(jobs)  # before the encoder, and again before the decoder
        encoded = model.ct2.encode(self._ct2.StorageView.from_array(batch))
        _abandon_if_asked(jobs)
        max_tokens = 448 - max(len(job.prompt) for job in jobs)
        # Speech carries at most ~10 tokens/s; a longer output is a repetition loop.
        # (CTranslate2 counts the prompt after <|startofprev|> into max_length.)
        seconds = _longest_seconds(jobs)
        limit = min(max_tokens, int(12 * seconds) + 16)
        if not jobs[0].options.final:
            # A greedy partial of audio cut mid-sentence loops most: ≤ 8 new tokens/s.
            prompt = max(len(job.prompt) for job in jobs)
            limit = min(limit, prompt + int(8 * seconds) + 4)
        outputs = model.ct2.generate(
            encoded,
            [job.prompt for job in jobs],
            beam_size=beam,
            num_hypotheses=beam,
            max_length=limit,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
        )
        return encoded, list(outputs)

    def _finish(
        self,
        model: LoadedModel,
        job: _Job,
        hyp: _Hypothesis,
        output: Any,
        encoded: Any,
        batch_index: int,
        frames: int,
    ) -> AsrResult:
        opts = job.options
        text, tokens, avg_logprob = hyp.text, hyp.tokens, hyp.avg_logprob
        no_speech = float(output.no_speech_prob)
        if not self._is_speech(job, text, tokens, avg_logprob, no_speech):
            return AsrResult("", language=job.language)
        final = asr_zh.postprocess(
            text,
            language=job.language,
            punctuation=opts.punctuation,
            itn=opts.inverse_text_normalization,
        )
        words: tuple[Word, ...] = ()
        if opts.final and opts.words and self._word_timestamps and final:
            if job.language == "zh":
                # postprocess repaired the text's digit strings: the words show them too.
                simplified = asr_zh.to_simplified(text)
                repaired = digit_strings.repair(simplified)
                if repaired != simplified:
                    tokens = job.tokenizer.encode(repaired)
            words = self._align(model, job, tokens, encoded, batch_index, frames)
        confidence = max(0.0, min(1.0, math.exp(avg_logprob)))
        return AsrResult(final, words, round(confidence, 3), job.language)

    def _is_speech(
        self, job: _Job, text: str, tokens: list[int], avg_logprob: float, no_speech: float
    ) -> bool:
        bare = asr_zh.strip_punctuation(asr_zh.to_simplified(text)).replace(" ", "")
        if not bare:
            return False
        if no_speech > _NO_SPEECH_PROB and avg_logprob < _LOGPROB_FLOOR:
            return False
        if degenerate(text, len(tokens), job.audio.size):
            return False
        prompt = asr_zh.strip_punctuation(self._zh_prompt + (job.options.prompt or ""))
        if bare in prompt.replace(" ", ""):
            return False  # Whisper echoing its prompt on unrecognisable audio
        if no_speech > 0.3 or avg_logprob < -0.8:
            # A partial is of audio the task's VAD already calls speech, often cut mid-word
            # (hence unsure): a second VAD pass over it would cost more than the preview.
            return not job.options.final or self._vad_confirms(job.audio)
        return True

    def _vad_confirms(self, audio: Float32Array) -> bool:
        """At least ~130 ms of frames that Silero calls speech."""
        if self._vad is None:
            from nls_gateway.engines.silero_vad import SileroVad

            self._vad = SileroVad()
        probs = self._vad.create_stream().accept_waveform(audio)
        return int(np.count_nonzero(probs >= 0.5)) >= 4

    def _align(
        self,
        model: LoadedModel,
        job: _Job,
        tokens: list[int],
        encoded: Any,
        batch_index: int,
        frames: int,
    ) -> tuple[Word, ...]:
        """Per-word (per-character for zh) times from Whisper's cross-attention heads."""
        if not tokens:
            return ()
        if np.asarray(encoded).shape[0] > 1:
            single = np.ascontiguousarray(np.asarray(encoded)[batch_index : batch_index + 1])
            encoded = self._ct2.StorageView.from_array(single)
        content_frames = min(job.audio.size // _HOP, frames)
        (result,) = model.ct2.align(encoded, job.tokenizer.sot_sequence, [tokens], content_frames)
        text_idx = np.array([pair[0] for pair in result.alignments])
        time_idx = np.array([pair[1] for pair in result.alignments])
        words, word_tokens = job.tokenizer.split_to_word_tokens(tokens + [job.tokenizer.eot])
        if len(word_tokens) <= 1 or text_idx.size == 0:
            return ()
        jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
        jump_ms = time_idx[jumps] * 20  # one encoder position = 20 ms
        bounds = np.cumsum([0] + [len(t) for t in word_tokens[:-1]])
        out: list[Word] = []
        for word, begin, end in zip(words, bounds[:-1], bounds[1:], strict=False):
            shown = asr_zh.to_simplified(word).strip() if job.language == "zh" else word.strip()
            shown = asr_zh.strip_punctuation(shown)
            if not shown or begin >= jump_ms.size:
                continue
            start_ms = int(jump_ms[begin])
            end_ms = int(jump_ms[min(end, jump_ms.size - 1)])
            out.append(Word(shown, start_ms, max(start_ms, end_ms)))
        return tuple(out)

    def _detect_language(self, model: LoadedModel, audio: Float32Array) -> str:
        frames = min(_FULL_FRAMES, audio.size // _HOP + PAD_FRAMES)
        padded = np.zeros(frames * _HOP, dtype=np.float32)
        padded[: min(audio.size, padded.size)] = audio[: padded.size]
        mel = np.ascontiguousarray(model.features(padded, padding=0)[None, :, :frames])
        encoded = model.ct2.encode(self._ct2.StorageView.from_array(mel))
        token, _ = model.ct2.detect_language(encoded)[0][0]
        return str(token).strip("<|>")


def _abandon_if_asked(jobs: Sequence[_Job]) -> None:
    """Stop a partial decode whose ``AsrOptions.abandon`` says a final needs the cores."""
    if any(job.options.abandon is not None and job.options.abandon() for job in jobs):
        raise DecodeAbandoned


def _longest_seconds(jobs: Sequence[_Job]) -> float:
    """Duration of the longest segment in a batch, in seconds."""
    return max(job.audio.size for job in jobs) / SAMPLE_RATE
