"""Runs the OFFICIAL alibabacloud-nls-python-sdk 1.0.2 (on PYTHONPATH) against a gateway.

Usage: python official_client.py URL TOKEN APPKEY PCM_FILE OUT_DIR
Prints one JSON line per task with what the callbacks received.
"""

import json
import sys
import time

import nls

url, token, appkey, pcm_file, out_dir = sys.argv[1:6]
audio = open(pcm_file, "rb").read()
assert "official-nls-sdk" in nls.__file__, nls.__file__


def record():
    calls = []

    def make(name):
        def callback(*args):
            calls.append([name, [a if isinstance(a, str) else len(a) for a in args]])

        return callback

    return calls, make


def recognizer():
    calls, cb = record()
    sr = nls.NlsSpeechRecognizer(
        url=url,
        token=token,
        appkey=appkey,
        on_start=cb("start"),
        on_result_changed=cb("changed"),
        on_completed=cb("completed"),
        on_error=cb("error"),
        on_close=cb("close"),
        callback_args=["r"],
    )
    sr.start(aformat="pcm", enable_intermediate_result=True, enable_punctuation_prediction=True)
    for i in range(0, len(audio), 640):
        sr.send_audio(audio[i : i + 640])
    sr.stop(timeout=60)
    time.sleep(0.5)
    return calls


def transcriber():
    calls, cb = record()
    st = nls.NlsSpeechTranscriber(
        url=url,
        token=token,
        appkey=appkey,
        on_start=cb("start"),
        on_sentence_begin=cb("begin"),
        on_sentence_end=cb("end"),
        on_result_changed=cb("changed"),
        on_completed=cb("completed"),
        on_error=cb("error"),
        on_close=cb("close"),
        callback_args=["t"],
    )
    st.start(aformat="pcm", enable_intermediate_result=True)
    for i in range(0, len(audio), 3200):
        st.send_audio(audio[i : i + 3200])
    st.ctrl(max_sentence_silence=600)
    st.send_audio(b"\x00\x00" * 16000)  # trailing silence ends the sentence
    st.stop(timeout=60)
    time.sleep(0.5)
    return calls


def synthesizer(long_tts, aformat):
    calls, cb = record()
    chunks = []
    tts = nls.NlsSpeechSynthesizer(
        url=url,
        token=token,
        appkey=appkey,
        long_tts=long_tts,
        on_metainfo=cb("metainfo"),
        on_data=lambda data, *a: chunks.append(data),
        on_completed=cb("completed"),
        on_error=cb("error"),
        on_close=cb("close"),
    )
    ok = tts.start(
        "今天天气不错。",
        voice="xiaoyun",
        aformat=aformat,
        sample_rate=16000,
        ex={"enable_subtitle": True},
    )
    path = f"{out_dir}/tts_{int(long_tts)}.{aformat}"
    open(path, "wb").write(b"".join(chunks))
    time.sleep(0.5)
    return {"ok": ok, "calls": calls, "file": path}


print(json.dumps({"task": "recognizer", "calls": recognizer()}, ensure_ascii=False), flush=True)
print(json.dumps({"task": "transcriber", "calls": transcriber()}, ensure_ascii=False), flush=True)
for long_tts, aformat in ((False, "pcm"), (True, "wav"), (False, "mp3")):
    result = synthesizer(long_tts, aformat)
    print(
        json.dumps({"task": f"tts-{long_tts}-{aformat}", **result}, ensure_ascii=False), flush=True
    )
