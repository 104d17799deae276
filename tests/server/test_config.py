"""ServerConfig: sources, precedence, validation and the secure default."""

from __future__ import annotations

import argparse

import pytest

from nls_gateway.cli import build_parser
from nls_gateway.config import ServerConfig, is_loopback, parse_appkey


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_loopback_without_credentials_is_dev_mode(caplog):
    config = ServerConfig()
    assert config.dev_mode
    assert "dev mode" in caplog.text


def test_public_address_without_credentials_refuses_to_start():
    with pytest.raises(ValueError, match="without credentials"):
        ServerConfig(host="0.0.0.0")
    with pytest.raises(ValueError, match="without credentials"):
        ServerConfig.from_args(_args("--host", "0.0.0.0", "--appkey", "k"), env={})
    config = ServerConfig.from_args(_args("--host", "0.0.0.0", "--token", "t"), env={})
    assert not config.dev_mode


def test_flags_env_and_toml_precedence(tmp_path):
    toml = tmp_path / "gw.toml"
    toml.write_text(
        "[server]\nport = 9000\nidle_timeout = 5.0\nmax_concurrent_tasks = 3\n"
        "max_live_streams = 6\npartial_interval_ms = 900\n"
        '[credentials]\ntokens = ["file-token"]\n'
        '[credentials.appkeys]\nfilekey = "en"\nother = { language = "auto", voice = "abby" }\n'
    )
    env = {
        "NLS_APP_KEY": "envkey",
        "NLS_TOKEN": "env-token",
        "ALIYUN_AK_ID": "id",
        "ALIYUN_AK_SECRET": "sec",
    }
    args = _args(
        "--config",
        str(toml),
        "--port",
        "9100",
        "--appkey",
        "flagkey:auto",
        "--token-secret",
        "0123456789abcdef0123",
        "--final-deadline",
        "1.5",
    )
    config = ServerConfig.from_args(args, env=env)
    assert config.port == 9100  # flag beats file
    assert config.idle_timeout == 5.0 and config.limits.idle_timeout_s == 5.0
    assert config.max_concurrent_tasks == 3
    assert (config.max_live_streams, config.final_deadline_s) == (6, 1.5)
    assert config.limits.partial_interval_ms == 900
    creds = config.credentials
    assert creds.tokens == {"file-token", "env-token"}
    assert dict(creds.access_keys) == {"id": "sec"}
    assert creds.appkeys["filekey"].language == "en"
    assert creds.appkeys["other"].voice == "abby"
    assert creds.appkeys["envkey"].language == "zh"
    assert creds.appkeys["flagkey"].language == "auto"
    assert config.token_secret == b"0123456789abcdef0123"
    assert "file-token" not in repr(config) and "sec" not in repr(config)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"port": 70000}, "port"),
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"max_concurrent_tasks": 0}, "max_concurrent_tasks"),
        ({"max_live_streams": -1}, "max_live_streams"),
        ({"final_deadline_s": 0}, "final_deadline_s"),
        ({"partial_interval_ms": 50}, "partial_interval_ms"),
        ({"certfile": "c.pem"}, "both certfile and keyfile"),
        ({"max_message_bytes": 1000}, "64 KiB"),
        ({"token_secret": b"short"}, "16 bytes"),
        ({"engines": "fake"}, "engines"),
    ],
)
def test_validation_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ServerConfig(**kwargs)


def test_bad_toml_and_unknown_keys(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ValueError, match="bad TOML"):
        ServerConfig.from_args(_args("--config", str(bad)), env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[server]\nnope = 1\n")
    with pytest.raises(ValueError, match="nope"):
        ServerConfig.from_args(_args("--config", str(unknown)), env={})
    with pytest.raises(ValueError, match="cannot read"):
        ServerConfig.from_args(_args("--config", str(tmp_path / "missing.toml")), env={})
    # Vocabularies are gateway-wide; a per-appkey list would be silently ignored.
    per_appkey = tmp_path / "per_appkey.toml"
    per_appkey.write_text('[credentials.appkeys.k]\nvocabularies = { v = ["词"] }\n')
    with pytest.raises(ValueError, match=r"k: unknown keys \['vocabularies'\]"):
        ServerConfig.from_args(_args("--config", str(per_appkey)), env={})


def test_appkey_spec_and_loopback():
    assert parse_appkey("k")[1].language == "zh"
    assert parse_appkey("k:en")[1].language == "en"
    with pytest.raises(ValueError):
        parse_appkey("k:fr")
    with pytest.raises(ValueError):
        parse_appkey(":en")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


def test_vocabularies_from_toml_and_flags(tmp_path):
    toml = tmp_path / "gw.toml"
    toml.write_text(
        '[vocabularies]\nv1 = ["达摩院", " 通义 ", ""]\nv2 = ["旧词"]\n'
        "[credentials.appkeys.k]\n"
        'language = "zh"\nasr_model = "/srv/models/whisper-small-ct2"\n'
    )
    args = _args(
        "--config", str(toml), "--vocabulary", "v2=新词,另一个", "--vocabulary", "v3=甲，乙"
    )
    config = ServerConfig.from_args(args, env={})
    assert dict(config.vocabularies) == {
        "v1": ("达摩院", "通义"),
        "v2": ("新词", "另一个"),  # the flag replaces the file's list
        "v3": ("甲", "乙"),
    }
    project = config.credentials.appkeys["k"]
    assert project.language == "zh" and project.asr_model == "/srv/models/whisper-small-ct2"
    assert ServerConfig().vocabularies == {}


@pytest.mark.parametrize(
    ("vocabularies", "match"),
    [
        ({"v": "达摩院"}, "list of words"),
        ({"v": [1, 2]}, "list of words"),
        ({"v": [" "]}, "no words"),
        ({"": ["词"]}, "bad vocabulary id"),
    ],
)
def test_bad_vocabularies(vocabularies, match):
    with pytest.raises(ValueError, match=match):
        ServerConfig(vocabularies=vocabularies)


def test_bad_vocabulary_flag():
    with pytest.raises(ValueError, match="ID=word1,word2"):
        ServerConfig.from_args(_args("--vocabulary", "v1"), env={})
    with pytest.raises(ValueError, match="no words"):
        ServerConfig.from_args(_args("--vocabulary", "v1="), env={})


def test_load_engines_hands_the_gateway_a_warm_asr(monkeypatch):
    # Whisper loads its zh model and homophone LM on first use; a fresh gateway's first
    # zh final waited ~2.5 s for them, which failed it past the 3 s deadline on slow CI.
    from nls_gateway.config import load_engines
    from nls_gateway.engines import registry

    class LazyAsr:
        preloaded = False

        def preload(self) -> None:
            self.preloaded = True

    monkeypatch.setattr(registry, "load_asr", lambda name, **store: LazyAsr())
    monkeypatch.setattr(registry, "load_vad", lambda name, **store: object())
    monkeypatch.setattr(registry, "load_tts", lambda name, **store: object())
    assert load_engines(ServerConfig()).asr.preloaded  # type: ignore[union-attr]
