"""The CLI's own error: a usage problem found after argument parsing (exit code 2).

Task failures are the SDK's exceptions (``nls.exception``); ``nls_gateway.cli.main`` turns
those into exit code 1 and these into exit code 2, argparse's code for bad usage.
"""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """The command cannot run as given (missing file, audio too long, missing appkey…).

    The message is shown after ``nls <command>:``, so it should say what to do instead.
    """
