"""The ``nls`` command line: speech commands, the gateway, and tools around them.

``nls recognize|transcribe|synthesize`` run speech tasks through the SDK, against the
cloud or a gateway given by ``--url`` or, by default, a gateway embedded in the process;
``nls serve`` runs the gateway; ``nls token|voices|models`` are the tools around them.
This package is the only code that may ``print``, read ``sys.argv``, call
``logging.basicConfig``, ``sys.exit`` or ``asyncio.run`` (design rule R9), and
:func:`main` is the only place where errors become exit codes: 0 ok, 1 the task failed
(one line, with the NLS status code where there is one), 2 bad usage (argparse's code).

Modules: ``serve`` (the gateway), ``recognition`` (recognize, transcribe), ``synthesis``
(synthesize), ``tools`` (token, voices, models), ``target`` (where to connect),
``embedded`` (the in-process gateway), ``audio_files`` (input files decoded with PyAV),
``display`` (terminal output), ``output`` (text/JSON/SRT/VTT formatting), ``errors``
(usage errors).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from nls.exception import NlsError
from nls_gateway.cli import serve
from nls_gateway.cli.errors import UsageError
from nls_gateway.cli.output import error_line
from nls_gateway.exception import EngineUnavailableError

__all__ = ["build_parser", "main"]

_EXAMPLES = """examples:
  nls recognize hello.wav                      # one sentence → text (embedded gateway)
  nls transcribe meeting.mp3 --output srt      # real-time transcription → subtitles
  nls synthesize "你好，世界。" -o hello.wav     # text → speech
  nls serve                                    # run the gateway on 127.0.0.1:8765
  nls voices | nls models list | nls token --akid … --aksecret …

Without --url the speech commands start a gateway inside the process; with --url they
talk to that gateway or to Alibaba Cloud (token: --token, or --akid/--aksecret).
Exit codes: 0 ok, 1 task failed, 2 usage error. `nls COMMAND --help` for each command.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``nls`` parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="nls",
        description="OpenNLS: Alibaba Cloud NLS speech from the command line, with a local "
        "NLS-compatible gateway and offline engines.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Imported here: they need the gateway extra (rich, PyAV, numpy); main() explains a
    # missing one instead of showing a traceback.
    from nls_gateway.cli import recognition, synthesis, tools

    recognition.register(sub)
    synthesis.register(sub)
    serve.register(sub)
    tools.register(sub)
    for name, command in sub.choices.items():
        if name != "serve":  # serve has its own --log-level (default INFO)
            command.add_argument(
                "--log-level",
                choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                default="WARNING",
                help="log level (default WARNING)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``nls`` console script and ``python -m nls_gateway``."""
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:
        # `pip install opennls` alone installs the SDK; the command needs the gateway extra.
        print(f"nls: {exc}; install the command line with: pip install 'opennls[gateway]'",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)
    args = parser.parse_args(argv)
    sys.exit(run(args))


def run(args: argparse.Namespace) -> int:
    """Run a parsed command and return its exit code (errors become one line on stderr)."""
    if args.command != "serve":
        logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
        # The gateway pins websockets' logger at INFO (to keep tokens out of DEBUG); an
        # embedded gateway's connection chatter must follow the command's level instead.
        level = max(logging.INFO, logging.getLevelName(args.log_level))
        logging.getLogger("nls_gateway.server.websockets").setLevel(level)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"nls {args.command}: {exc}", file=sys.stderr)
        return 2
    except (NlsError, EngineUnavailableError) as exc:
        print(error_line(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `nls transcribe … | head`: the reader left; nothing more to say.
        return 0
    return code


def _version() -> str:
    try:
        return version("opennls")
    except PackageNotFoundError:  # running from a source tree without installing
        return "unknown"
