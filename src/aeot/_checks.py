"""Argument checks that import neither torch nor numpy, so that the command line can
use them before it loads anything heavy (``aeot --help`` stays fast)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def _numpy_integer() -> type:
    """numpy.integer when numpy is loaded (a numpy integer can only come from it)."""
    numpy = sys.modules.get("numpy")
    return numpy.integer if numpy is not None else int


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | _numpy_integer()):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_seed(value, name: str = "seed", *, maximum: int = 2**63 - 1) -> int:
    """A random seed: an integer in [0, ``maximum``] (torch generators take signed 64 bits)."""
    seed = check_positive_int(value, name, minimum=0)
    if seed > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {seed}")
    return seed


def check_output_path(
    path: str | os.PathLike,
    *,
    folder: bool,
    option: str = "--out",
    suffixes: tuple[str, ...] | None = None,
) -> Path:
    """Check, before any long work, that ``path`` can be written: raise ValueError if not.

    ``folder``: whether a folder (True) or a file (False) is written there. The path
    must not be the other kind of thing already, its nearest existing ancestor must
    be a folder, and that folder (or ``path`` itself, an existing folder) must accept
    a new file, which is tested by creating and deleting one (permission bits lie for
    root and on read-only mounts). ``suffixes``: the accepted file endings.
    """
    target = Path(path)
    if target.exists() or target.is_symlink():
        if folder and not target.is_dir():
            raise ValueError(f"{option} {target} exists and is not a folder")
        if not folder and target.is_dir():
            raise ValueError(f"{option} {target} is a folder; give a file name")
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise ValueError(f"{option} {target}: unsupported output; use {' or '.join(suffixes)}")
    probe = target if folder and target.is_dir() else target.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{option} {target}: {probe} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".aeot-write-test-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ValueError(f"{option} {target}: cannot write in {probe}: {exc.strerror}") from None
    return target
