"""``python -m nls_gateway``: the ``nls`` command line (see ``nls_gateway.cli``)."""

from __future__ import annotations

from nls_gateway.cli import main

if __name__ == "__main__":
    main()
