"""Gateway configuration: the frozen ``ServerConfig`` and where its values come from.

This module owns every knob of a running gateway, grouped like ``websockets.serve``
(WebSocket / HTTP / timeouts / limits / engines / hot-word vocabularies / logging), and
the three sources that
fill them, in rising precedence: a TOML file (``--config``), the environment
(``NLS_APP_KEY``, ``NLS_TOKEN``, ``ALIYUN_AK_ID``, ``ALIYUN_AK_SECRET``) and command-line
flags. It also applies the secure default: on a loopback address with no credentials the
gateway runs in an explicit, logged dev mode; on any other address it refuses to start
without credentials. Finally it chooses engine adapters by name (design rule R7) in
:func:`load_engines`.

It must not open sockets or start the server, and it validates with ``ValueError``,
never ``assert``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from nls.exception import InvalidParameter
from nls_gateway.auth import Authenticator, Credentials, TokenIssuer
from nls_gateway.tasks.base import Engines, Limits, Project

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,no-redef]

__all__ = [
    "DEFAULT_PORT",
    "EngineChoice",
    "ServerConfig",
    "load_engines",
    "parse_appkey",
    "parse_vocabulary",
]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8765
WS_PATH = "/ws/v1"
"""The only WebSocket path of the NLS gateway (protocol.md §1.1)."""

EngineChoice = Literal["real", "scripted"]

_LANGUAGES = ("zh", "en", "auto")
_ENV_APPKEY = "NLS_APP_KEY"
_ENV_TOKEN = "NLS_TOKEN"
_ENV_AK_ID = "ALIYUN_AK_ID"
_ENV_AK_SECRET = "ALIYUN_AK_SECRET"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a gateway process needs to know; immutable once built.

    Build it directly in code (tests, embedding) or with :meth:`from_args` from the CLI.
    ``repr`` never shows tokens or secrets.
    """

    # WebSocket
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """TCP port; 0 picks a free one (tests)."""
    max_message_bytes: int = 4 * 1024 * 1024
    """Largest client message accepted (audio chunks; ≥ 64 KiB, §2.2)."""
    ping_interval: float | None = None
    """Server keepalive pings; off by default: the idle timer ends dead sessions, and
    clients that never ping (official TTS classes) must not be closed for missing pongs."""
    certfile: str | None = None
    keyfile: str | None = None

    # HTTP
    console_dir: str | None = None
    """Static files for ``GET /``; default ``nls_gateway/console`` when it exists."""

    # Auth
    credentials: Credentials = field(default_factory=Credentials, repr=False)
    token_secret: bytes | None = field(default=None, repr=False)
    """HMAC key shared by replicas so tokens from one work on all; random per process
    when None."""
    token_lifetime_s: int = 86400

    # Timeouts
    idle_timeout: float = 10.0
    """No client data for this long → TaskFailed 40000004 (§2.4)."""
    open_timeout: float = 10.0
    close_timeout: float = 3.0
    """The official Python SDK waits up to 3 s for our close echo (§2.4)."""
    shutdown_grace: float = 10.0
    """On shutdown, running tasks get this long to finish before TaskFailed 50000000."""
    engine_timeout: float | None = 120.0
    """A single engine call longer than this fails its task (EngineError → 50000000)."""

    # Limits (the policy is nls_gateway.admission's)
    max_live_streams: int = 0
    """Engine budget in live recognition streams (a synthesis task costs
    ``admission.TTS_STREAM_COST``); a Start beyond it → TaskFailed 40000005 at once.
    0 = derive from this machine (``admission.STREAMS_PER_CORE`` per CPU core)."""
    max_concurrent_tasks: int = 64
    """Live tasks of any cost over this → TaskFailed 40000005 TOO_MANY_REQUESTS (§2.5)."""
    max_connections: int = 4096
    """Open WebSockets over this → HTTP 503 at the handshake."""
    engine_threads: int | None = None
    """Executor threads for engine calls; default: the CPU count (at least 2)."""
    max_pending_engine_calls: int = 256
    """Engine calls handed to the executor at once; later calls wait their turn."""
    max_waiting_engine_calls: int = 4096
    """Engine calls waiting for a turn; one more fails its task at once (50000000), so a
    burst never becomes an unbounded backlog."""
    batch_window_ms: float = 40.0
    """ASR micro-batching: collect concurrent segments this long, then decode them at once."""
    max_batch: int = 8
    decode_lanes: int = 1
    """ASR model calls at once (one call already uses every core)."""
    final_deadline_s: float | None = 3.0
    """A final decode queued longer than this fails its task (50000000 "Instance pool
    exhausted!") instead of answering late; None: never."""
    first_partial_ms: int = 500
    """Speech before a stream's first partial result."""
    partial_interval_ms: int = 600
    """New audio before the next partial (spaced further out while the engine is behind)."""
    limits: Limits = field(default_factory=Limits)
    """The cloud's per-task limits (§2.5); ``idle_timeout_s`` mirrors ``idle_timeout``."""

    # Engines
    engines: EngineChoice = "real"
    """``scripted`` loads the test doubles of ``nls_gateway.testing`` (tests only)."""
    asr: str = "whisper"
    vad: str = "silero"
    tts: str = "kokoro"
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """``vocabulary_id`` → hot words a recognition request may name (TOML
    ``[vocabularies]``, ``--vocabulary ID=w1,w2``); an unknown id fails the task 40000003."""

    # Logging
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.max_message_bytes < 64 * 1024:
            raise ValueError("max_message_bytes must be at least 64 KiB (Java frames, §2.2)")
        for name in ("idle_timeout", "open_timeout", "close_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.shutdown_grace < 0:
            raise ValueError("shutdown_grace must not be negative")
        if self.engine_timeout is not None and self.engine_timeout <= 0:
            raise ValueError("engine_timeout must be positive (or None for no limit)")
        if self.max_live_streams < 0:
            raise ValueError("max_live_streams must not be negative (0 = derive)")
        if self.decode_lanes < 1:
            raise ValueError("decode_lanes must be at least 1")
        if self.final_deadline_s is not None and self.final_deadline_s <= 0:
            raise ValueError("final_deadline_s must be positive (or None for no deadline)")
        if self.first_partial_ms < 0 or self.partial_interval_ms < 100:
            raise ValueError("first_partial_ms must be ≥ 0 and partial_interval_ms ≥ 100")
        for name in ("max_concurrent_tasks", "max_connections", "max_pending_engine_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_waiting_engine_calls < 0:
            raise ValueError("max_waiting_engine_calls must not be negative")
        if self.engine_threads is not None and self.engine_threads < 1:
            raise ValueError("engine_threads must be at least 1")
        if self.max_batch < 1 or self.batch_window_ms < 0:
            raise ValueError("max_batch must be ≥ 1 and batch_window_ms ≥ 0")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("TLS needs both certfile and keyfile")
        if self.engines not in ("real", "scripted"):
            raise ValueError(f"engines must be 'real' or 'scripted', got {self.engines!r}")
        if self.token_secret is not None and len(self.token_secret) < 16:
            raise ValueError("token secret must be at least 16 bytes")
        object.__setattr__(self, "vocabularies", _check_vocabularies(self.vocabularies))
        mirrored = replace(
            self.limits,
            idle_timeout_s=self.idle_timeout,
            first_partial_ms=self.first_partial_ms,
            partial_interval_ms=self.partial_interval_ms,
        )
        if mirrored != self.limits:
            object.__setattr__(self, "limits", mirrored)
        if not self.credentials.dev_mode and not _has_credentials(self.credentials):
            if not is_loopback(self.host):
                raise ValueError(
                    f"refusing to serve on {self.host!r} without credentials: give --token, "
                    "--access-key-id/--access-key-secret (or NLS_TOKEN / ALIYUN_AK_ID + "
                    "ALIYUN_AK_SECRET), or bind to 127.0.0.1 for dev mode"
                )
            # Secure default: no credentials on loopback = explicit dev mode, said loudly.
            logger.warning(
                "dev mode: no credentials configured, accepting any token and appkey on %s",
                self.host,
            )
            object.__setattr__(self, "credentials", replace(self.credentials, dev_mode=True))

    @property
    def dev_mode(self) -> bool:
        """True when any token and any appkey are accepted."""
        return self.credentials.dev_mode

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    def authenticator(self) -> Authenticator:
        """A fresh :class:`Authenticator` for these credentials and token secret."""
        secret = self.token_secret or secrets.token_bytes(32)
        return Authenticator(self.credentials, TokenIssuer(secret, self.token_lifetime_s))

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, env: Mapping[str, str] | None = None
    ) -> ServerConfig:
        """Build a config from parsed CLI flags, the environment and ``args.config`` (TOML).

        Flags left at None mean "not given". Precedence: flags > environment > TOML >
        defaults.

        Raises:
            ValueError: a bad value, a bad file or missing credentials off loopback.
        """
        env = os.environ if env is None else env
        data: dict[str, Any] = {}
        cred_data: dict[str, Any] = {}
        vocabularies: dict[str, Any] = {}
        path = getattr(args, "config", None)
        if path:
            data, cred_data, vocabularies = _read_toml(Path(path))
        appkeys = dict(_projects(cred_data.pop("appkeys", {})))
        tokens = set(cred_data.pop("tokens", []))
        access_keys = dict(cred_data.pop("access_keys", {}))
        dev_mode = bool(cred_data.pop("dev_mode", False))
        if cred_data:
            raise ValueError(f"unknown [credentials] keys: {sorted(cred_data)}")

        # Environment (the official samples' variable names).
        if env.get(_ENV_APPKEY):
            key, project = parse_appkey(env[_ENV_APPKEY])
            appkeys.setdefault(key, project)
        if env.get(_ENV_TOKEN):
            tokens.add(env[_ENV_TOKEN])
        if env.get(_ENV_AK_ID) and env.get(_ENV_AK_SECRET):
            access_keys[env[_ENV_AK_ID]] = env[_ENV_AK_SECRET]

        # Flags.
        for spec in getattr(args, "appkey", None) or ():
            key, project = parse_appkey(spec)
            appkeys[key] = project
        tokens.update(getattr(args, "token", None) or ())
        akid, aksecret = (
            getattr(args, "access_key_id", None),
            getattr(args, "access_key_secret", None),
        )
        if (akid is None) != (aksecret is None):
            raise ValueError("--access-key-id and --access-key-secret go together")
        if akid and aksecret:
            access_keys[akid] = aksecret
        for spec in getattr(args, "vocabulary", None) or ():
            vocabulary_id, words = parse_vocabulary(spec)
            vocabularies[vocabulary_id] = words
        if vocabularies:
            data["vocabularies"] = vocabularies
        for f in fields(cls):
            value = getattr(args, f.name, None)
            if value is not None and f.name not in (
                "credentials",
                "limits",
                "token_secret",
                "vocabularies",
            ):
                data[f.name] = value
        secret = getattr(args, "token_secret", None) or data.pop("token_secret", None)
        if secret is not None:
            data["token_secret"] = secret.encode("utf-8") if isinstance(secret, str) else secret
        try:
            credentials = Credentials(appkeys, frozenset(tokens), access_keys, dev_mode)
        except InvalidParameter as exc:
            raise ValueError(str(exc)) from None
        return cls(credentials=credentials, **data)


def parse_appkey(spec: str) -> tuple[str, Project]:
    """Parse ``KEY[:LANG]`` (LANG ``zh``, ``en`` or ``auto``; default ``zh``).

    Raises:
        ValueError: empty key or unknown language.
    """
    key, _, lang = spec.partition(":")
    lang = lang or "zh"
    if not key:
        raise ValueError(f"empty appkey in {spec!r}")
    if lang not in _LANGUAGES:
        raise ValueError(f"appkey language must be zh, en or auto, got {lang!r}")
    return key, Project(language=lang)  # type: ignore[arg-type]  # checked just above


def parse_vocabulary(spec: str) -> tuple[str, tuple[str, ...]]:
    """Parse ``ID=word1,word2`` (the ``--vocabulary`` flag; ``，`` separates too).

    Raises:
        ValueError: no ``=``, an empty id or no words.
    """
    vocabulary_id, sep, words = spec.partition("=")
    if not sep or not vocabulary_id.strip():
        raise ValueError(f"--vocabulary takes ID=word1,word2, got {spec!r}")
    return vocabulary_id.strip(), tuple(words.replace("，", ",").split(","))


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (dev mode is allowed there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_engines(config: ServerConfig) -> Engines:
    """Load the configured engines, warm (blocking: call it in a thread).

    Real engines come from ``engines.registry``; ``scripted`` ones from
    ``nls_gateway.testing`` and are never chosen silently.

    Raises:
        EngineUnavailableError: an engine's package or weights are missing.
    """
    if config.engines == "scripted":
        from nls_gateway import testing

        return Engines(
            asr=testing.ScriptedAsr(), vad=testing.ScriptedVad(), tts=testing.ScriptedTts()
        )
    from nls_gateway import modelstore
    from nls_gateway.engines import registry

    store = {"locate": modelstore.locate, "cache_dir": modelstore.cache_dir()}
    asr = registry.load_asr(config.asr, **store)
    # A gateway reports ready with its engines warm. An engine that loads its models on
    # first use (Whisper: the zh model and homophone LM, ~2.5 s) would otherwise make the
    # first session of a fresh process late, past ``final_deadline_s`` on a slow box.
    preload = getattr(asr, "preload", None)
    if callable(preload):
        preload()
    return Engines(
        asr=asr,
        vad=registry.load_vad(config.vad, **store),
        tts=registry.load_tts(config.tts, **store),
    )


def _has_credentials(credentials: Credentials) -> bool:
    return bool(credentials.tokens or credentials.access_keys)


def _check_vocabularies(table: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    """Validate ``vocabulary_id`` → words; words are stripped and empty ones dropped."""
    out: dict[str, tuple[str, ...]] = {}
    for vocabulary_id, words in table.items():
        if not isinstance(vocabulary_id, str) or not vocabulary_id.strip():
            raise ValueError(f"vocabularies: bad vocabulary id {vocabulary_id!r}")
        if isinstance(words, str) or not isinstance(words, Sequence):
            raise ValueError(f"vocabularies: {vocabulary_id} must be a list of words")
        if not all(isinstance(w, str) for w in words):
            raise ValueError(f"vocabularies: {vocabulary_id} must be a list of words")
        kept = tuple(w.strip() for w in words if w.strip())
        if not kept:
            raise ValueError(f"vocabularies: {vocabulary_id} has no words")
        out[vocabulary_id] = kept
    return out


def _read_toml(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"bad TOML in {path}: {exc}") from None
    unknown = set(doc) - {"server", "credentials", "vocabularies"}
    if unknown:
        raise ValueError(
            f"unknown tables in {path}: {sorted(unknown)} "
            "(use [server], [credentials], [vocabularies])"
        )
    server = dict(doc.get("server", {}))
    names = {f.name for f in fields(ServerConfig)} - {"credentials", "limits", "vocabularies"}
    bad = set(server) - names
    if bad:
        raise ValueError(f"unknown [server] keys in {path}: {sorted(bad)}")
    return server, dict(doc.get("credentials", {})), dict(doc.get("vocabularies", {}))


_PROJECT_KEYS = frozenset({"language", "asr_model", "voice"})
"""What a config file may set per appkey (the appkey and vocabularies come from elsewhere)."""


def _projects(table: Mapping[str, Any]) -> Sequence[tuple[str, Project]]:
    out = []
    for key, value in table.items():
        if isinstance(value, str):
            out.append(parse_appkey(f"{key}:{value}"))
        elif isinstance(value, Mapping):
            unknown = set(value) - _PROJECT_KEYS
            if unknown:
                raise ValueError(
                    f"[credentials.appkeys] {key}: unknown keys {sorted(unknown)} "
                    f"(allowed: {sorted(_PROJECT_KEYS)})"
                )
            try:
                out.append((key, Project(**dict(value))))
            except (TypeError, InvalidParameter) as exc:
                raise ValueError(f"[credentials.appkeys] {key}: {exc}") from None
        else:
            raise ValueError(f"[credentials.appkeys] {key}: expected a language or a table")
    return out
