"""The package version (original module path ``nls.version``)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
