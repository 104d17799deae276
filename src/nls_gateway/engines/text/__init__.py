"""Text processing around the engines, no audio: Whisper output rules, the word LM, TTS text.

* :mod:`.asr_zh`: Chinese ASR output rules (simplified script, punctuation, ITN) and the
  accuracy benchmark's scoring form.
* :mod:`.word_lm`: the Chinese word unigram model that rescores Whisper's n-best lists.
* :mod:`.tts_normalize`: text normalisation for synthesis (digits and symbols → spoken hanzi).
* :mod:`.tts_frontend`: Kokoro's front end (clauses, Chinese G2P, English via espeak-ng).
"""
