"""OpenNLS: a drop-in replacement for the Alibaba Cloud NLS Python SDK (``import nls``)."""

from __future__ import annotations

from nls.version import __version__

__all__ = ["__version__"]
