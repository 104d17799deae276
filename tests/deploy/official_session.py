"""Runs the OFFICIAL alibabacloud-nls-python-sdk 1.0.2 (on PYTHONPATH) through a proxy:
one SpeechRecognizer, one SpeechTranscriber and one SpeechSynthesizer session, in turn.

Usage: python official_session.py URL TOKEN APPKEY PCM_FILE
Prints one JSON line per session: the callbacks it got (audio as its length).
(tests/e2e/official_client.py covers every option; this is the short tour for the proxy.)
"""

import json
import sys
import threading

import nls

url, token, appkey, pcm_file = sys.argv[1:5]
audio = open(pcm_file, "rb").read()
assert "official-nls-sdk" in nls.__file__, nls.__file__


def record():
    calls, closed = [], threading.Event()

    def make(name):
        def callback(*args):
            calls.append([name, [a if isinstance(a, str) else len(a) for a in args]])
            if name == "close":
                closed.set()

        return callback

    return calls, closed, make


def recognizer():
    calls, closed, cb = record()
    sr = nls.NlsSpeechRecognizer(
        url=url, token=token, appkey=appkey,
        on_completed=cb("completed"), on_error=cb("error"), on_close=cb("close"),
    )  # fmt: skip
    sr.start(aformat="pcm", enable_intermediate_result=True)
    for i in range(0, len(audio), 3200):
        sr.send_audio(audio[i : i + 3200])
    sr.stop(timeout=10)
    closed.wait(3)
    return calls


def transcriber():
    calls, closed, cb = record()
    st = nls.NlsSpeechTranscriber(
        url=url, token=token, appkey=appkey, on_sentence_end=cb("end"),
        on_completed=cb("completed"), on_error=cb("error"), on_close=cb("close"),
    )  # fmt: skip
    st.start(aformat="pcm", enable_intermediate_result=True)
    for i in range(0, len(audio), 3200):
        st.send_audio(audio[i : i + 3200])
    st.send_audio(b"\x00\x00" * 12800)  # trailing silence ends the sentence
    st.stop(timeout=10)
    closed.wait(3)
    return calls


def synthesizer():
    calls, closed, cb = record()
    tts = nls.NlsSpeechSynthesizer(
        url=url, token=token, appkey=appkey, on_data=cb("data"),
        on_completed=cb("completed"), on_error=cb("error"), on_close=cb("close"),
    )  # fmt: skip
    tts.start("你好。", voice="xiaoyun", aformat="pcm", sample_rate=16000)
    closed.wait(3)
    return calls


for name, session in (("recognizer", recognizer), ("transcriber", transcriber)):
    print(json.dumps({"task": name, "calls": session()}, ensure_ascii=False), flush=True)
print(json.dumps({"task": "synthesizer", "calls": synthesizer()}, ensure_ascii=False), flush=True)
