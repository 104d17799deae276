"""``nls serve``: run the gateway in the foreground until SIGTERM/SIGINT.

This module owns the serve subcommand's flags (small ``add_*_args`` functions so each
subcommand picks the groups it needs, as in sherpa-onnx's ``streaming_server.py``), its
logging setup, signal handling and exit codes. Like the rest of ``nls_gateway.cli`` it may
``print``, call ``logging.basicConfig`` and ``asyncio.run`` (design rule R9).

It must not contain server logic: it builds a ``ServerConfig`` and calls ``serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from nls_gateway.config import DEFAULT_PORT, ServerConfig

__all__ = [
    "add_auth_args",
    "add_config_args",
    "add_engine_args",
    "add_limit_args",
    "add_logging_args",
    "add_network_args",
    "register",
]

logger = logging.getLogger("nls_gateway")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file with [server], [credentials] and [vocabularies] tables (flags override it)",
    )


def add_network_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("network")
    group.add_argument("--host", help="address to bind (default 127.0.0.1)")
    group.add_argument("--port", type=int, help=f"TCP port (default {DEFAULT_PORT}; 0 = any)")
    group.add_argument("--certfile", help="TLS certificate chain (PEM); serves wss://")
    group.add_argument("--keyfile", help="TLS private key (PEM)")
    group.add_argument(
        "--ping-interval",
        type=float,
        metavar="SECONDS",
        help="send keepalive pings (off by default; missing pongs never close a client)",
    )


def add_auth_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "credentials",
        "With none on a loopback address the gateway runs in dev mode (any token/appkey).",
    )
    group.add_argument(
        "--appkey",
        action="append",
        metavar="KEY[:LANG]",
        help="allowed appkey, LANG zh|en|auto (default zh); repeatable; env NLS_APP_KEY",
    )
    group.add_argument(
        "--token",
        action="append",
        metavar="TOKEN",
        help="static token accepted forever; repeatable; env NLS_TOKEN",
    )
    group.add_argument("--access-key-id", help="AccessKey ID for CreateToken; env ALIYUN_AK_ID")
    group.add_argument(
        "--access-key-secret", help="AccessKey secret for CreateToken; env ALIYUN_AK_SECRET"
    )
    group.add_argument(
        "--token-secret",
        help="HMAC key shared by replicas so their tokens verify everywhere (≥ 16 bytes; "
        "default: random per process)",
    )


def add_limit_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits and timeouts")
    group.add_argument(
        "--max-live-streams",
        type=int,
        metavar="N",
        help="engine budget in live recognition streams (a synthesis task counts 2); a Start "
        "beyond it gets TaskFailed 40000005 at once (default 0 = 1 per CPU core, measured)",
    )
    group.add_argument(
        "--max-concurrent-tasks",
        type=int,
        metavar="N",
        help="live tasks of any kind beyond this get TaskFailed 40000005 (default 64)",
    )
    group.add_argument(
        "--final-deadline",
        dest="final_deadline_s",
        type=float,
        metavar="SECONDS",
        help="a final ASR decode queued longer than this fails its task with 50000000 (default 3)",
    )
    group.add_argument(
        "--partial-interval-ms",
        type=int,
        metavar="MS",
        help="new audio between partial results (default 600; longer while the engine is behind)",
    )
    group.add_argument(
        "--max-connections", type=int, metavar="N", help="open WebSockets (default 4096)"
    )
    group.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="no client data this long → TaskFailed 40000004 (default 10)",
    )
    group.add_argument(
        "--engine-timeout",
        type=float,
        metavar="SECONDS",
        help="one engine call longer than this fails its task (default 120)",
    )
    group.add_argument(
        "--engine-threads", type=int, metavar="N", help="engine executor threads (default: CPUs)"
    )
    group.add_argument(
        "--shutdown-grace",
        type=float,
        metavar="SECONDS",
        help="on SIGTERM, running tasks get this long to finish (default 10)",
    )


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engines")
    group.add_argument("--asr", help="ASR engine (default whisper)")
    group.add_argument("--tts", help="TTS engine (default kokoro)")
    group.add_argument("--vad", help="VAD engine (default silero)")
    group.add_argument(
        "--engines",
        choices=("real", "scripted"),
        help="'scripted' = deterministic test doubles (for tests only)",
    )
    group.add_argument(
        "--vocabulary",
        action="append",
        metavar="ID=WORD,WORD",
        help="hot words a request selects with vocabulary_id ID; repeatable; TOML [vocabularies]",
    )


def add_logging_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level (default INFO)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` subcommand to the ``nls`` parser."""
    serve = sub.add_parser(
        "serve",
        help="run the gateway (WebSocket /ws/v1 + HTTP)",
        description="Run the NLS-compatible gateway: WebSocket /ws/v1, CreateToken, "
        "/healthz, /metrics, /voices and the web console, on one port.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for add in (
        add_config_args,
        add_network_args,
        add_auth_args,
        add_limit_args,
        add_engine_args,
        add_logging_args,
    ):
        add(serve)
    serve.set_defaults(func=_cmd_serve)


_EXAMPLES = """examples:
  nls serve                                   # dev mode on 127.0.0.1:8765 (any token)
  nls serve --appkey demo:zh --token secret   # only this appkey and token
  nls serve --host 0.0.0.0 --config gateway.toml
  NLS_TOKEN=secret nls serve --port 9000 --log-level DEBUG
"""


def _cmd_serve(args: argparse.Namespace) -> int:
    level = args.log_level or "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = ServerConfig.from_args(args)
    except ValueError as exc:
        print(f"nls serve: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 130


async def _serve(config: ServerConfig) -> int:
    from nls_gateway.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        gateway = await serve(config)
    except OSError as exc:
        print(f"nls serve: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    try:
        ready = asyncio.create_task(gateway.wait_ready())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            return 0
        try:
            ready.result()
        except Exception as exc:  # the engine loader's error names the missing piece
            print(f"nls serve: engines failed to load: {exc}", file=sys.stderr)
            return 1
        print(f"nls serve: ready on {gateway.url}", file=sys.stderr)
        await stopping
        return 0
    finally:
        await gateway.shutdown()
