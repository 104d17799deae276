"""Audio in and out of the gateway, no I/O: bytes ↔ mono float32 samples.

* :mod:`.decoder`: the streaming ``Decoder`` interface, ``AudioFormatError`` (the NLS
  status codes for bad input) and the sample helpers (pcm16 ↔ float32, resampling).
* :mod:`.input`: ``make_decoder`` for a recognition request's ``format``/``sample_rate``,
  and the PCM/WAV decoder.
* :mod:`.codecs`: compressed recognition input (Ogg Opus, ``opu``, mp3, aac, amr) via PyAV.
* :mod:`.output`: synthesis output (volume, pitch, sample rate, pcm/wav/mp3 encoding).
"""
