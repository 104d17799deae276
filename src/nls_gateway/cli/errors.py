"""The CLI's own error: a usage problem found after argument parsing (exit code 2).

Task failures are the SDK's exceptions (``nls.exception``); ``nls_gateway.cli.main`` turns
those into exit code 1 and these into exit code 2, argparse's code for bad usage.
"""

from __future__ import annotations

import asyncio

from nls.exception import NlsError

__all__ = ["UsageError", "raise_consumer_error"]


class UsageError(Exception):
    """The command cannot run as given (missing file, audio too long, missing appkey…).

    The message is shown after ``nls <command>:``, so it should say what to do instead.
    """


def raise_consumer_error(consumer: asyncio.Task[None], exc: NlsError) -> None:
    """Prefer the event reader's error (TaskFailed with its status) to a follow-on one."""
    if consumer.done() and not consumer.cancelled():
        error = consumer.exception()
        if isinstance(error, NlsError) and error is not exc:
            raise error from exc
