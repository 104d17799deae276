"""The original public surface: names, module paths, signatures and defaults (§12.2)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import nls

ORIGINAL_MODULES = [
    "nls.speech_recognizer",
    "nls.speech_transcriber",
    "nls.speech_synthesizer",
    "nls.stream_input_tts",
    "nls.common_proto",
    "nls.token",
    "nls.util",
    "nls.logging",
    "nls.exception",
    "nls.version",
]


@pytest.mark.parametrize("module", ORIGINAL_MODULES)
def test_original_module_paths_import(module: str) -> None:
    importlib.import_module(module)


def test_original_exception_names() -> None:
    for name in (
        "InvalidParameter",
        "GetTokenFailed",
        "ConnectionTimeout",
        "ConnectionUnavailable",
        "StartTimeoutException",
        "StopTimeoutException",
        "NotStartException",
        "CompleteTimeoutException",
        "WrongStateException",
    ):
        assert issubclass(getattr(nls.exception, name), nls.exception.NlsError)
    assert issubclass(nls.exception.InvalidParameter, ValueError)


def _defaults(fn: object) -> dict[str, object]:
    return {
        k: p.default
        for k, p in inspect.signature(fn).parameters.items()  # type: ignore[arg-type]
        if p.default is not inspect.Parameter.empty
    }


def test_recognizer_and_transcriber_signatures() -> None:
    for cls in (nls.NlsSpeechRecognizer, nls.NlsSpeechTranscriber):
        params = list(inspect.signature(cls).parameters)
        assert params[:5] == ["url", "akid", "aksecret", "token", "appkey"]
        assert params[-1] == "callback_args"
        assert _defaults(cls)["url"] == "wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1"
        start = _defaults(cls.start)
        assert start == {
            "aformat": "pcm",
            "sample_rate": 16000,
            "ch": 1,
            "enable_intermediate_result": False,
            "enable_punctuation_prediction": False,
            "enable_inverse_text_normalization": False,
            "timeout": 10,
            "ping_interval": 8,
            "ping_timeout": None,
            "ex": None,
            "enable_punctutation_prediction": None,
        }
        assert _defaults(cls.stop) == {"timeout": 10}
        assert list(inspect.signature(cls.send_audio).parameters) == ["self", "pcm_data"]
    assert {"on_sentence_begin", "on_sentence_end"} <= set(
        inspect.signature(nls.NlsSpeechTranscriber).parameters
    )


def test_synthesizer_signature() -> None:
    params = inspect.signature(nls.NlsSpeechSynthesizer).parameters
    assert "long_tts" in params and "on_metainfo" in params and "on_data" in params
    start = _defaults(nls.NlsSpeechSynthesizer.start)
    assert start["voice"] == "xiaoyun" and start["aformat"] == "pcm"
    assert start["sample_rate"] == 16000 and start["volume"] == 50
    assert start["wait_complete"] is True
    assert start["start_timeout"] == 10 and start["completed_timeout"] == 60


def test_stream_input_tts_signature() -> None:
    start = _defaults(nls.NlsStreamInputTtsSynthesizer.startStreamInputTts)
    assert start["voice"] == "longxiaochun" and start["sample_rate"] == 24000
    for name in ("sendStreamInputTts", "stopStreamInputTts", "shutdown"):
        assert callable(getattr(nls.NlsStreamInputTtsSynthesizer, name))


def test_common_proto_signature() -> None:
    params = list(inspect.signature(nls.NlsCommonProto).parameters)
    assert params == [
        "url",
        "akid",
        "aksecret",
        "token",
        "appkey",
        "namespace",
        "on_open",
        "on_error",
        "on_close",
        "on_data",
        "user_callback",
        "callback_args",
    ]


def test_module_functions() -> None:
    assert list(inspect.signature(nls.token.getToken).parameters)[:5] == [
        "akid",
        "aksecret",
        "domain",
        "version",
        "url",
    ]
    assert nls.util.GetDefaultContext() == {
        "sdk": {"name": "nls-python-sdk", "version": "0.0.1", "language": "python"}
    }
    nls.enableTrace(True)
    nls.enableTrace(False)
    assert isinstance(nls.version.__version__, str)


def test_nls_imports_no_numpy_or_gateway() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nls, nls.asyncio; "
        "print(any(m.split('.')[0] in ('numpy', 'nls_gateway') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
