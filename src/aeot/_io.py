"""Atomic file writes (temporary file in the same folder, fsync, rename) and checkpoint helpers."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    An interrupted write leaves the previous file (if any) untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)


def save_json(path: str | os.PathLike, obj) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True)))


def load_json(path: str | os.PathLike, *, what: str = "file"):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from None


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata=None) -> None:
    """Save a flat dict of tensors as safetensors, atomically."""
    cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=metadata))


def load_tensors(path: str | os.PathLike, *, what: str = "weights file") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise ValueError(f"{what} {path} is corrupt or not a safetensors file: {exc}") from None


def load_checkpoint(path: str | os.PathLike, required: set[str], *, what: str) -> dict:
    """Read a torch checkpoint (tensors on CPU) that must hold the keys ``required``.

    Raises FileNotFoundError for a missing file and ValueError for a corrupt or
    foreign one (``what`` names the expected kind in the message).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"checkpoint {p} is corrupt or not an aeot checkpoint: {exc}") from None
    if not isinstance(payload, dict) or not required <= set(payload):
        raise ValueError(f"checkpoint {p} is not an aeot {what} checkpoint")
    return payload


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_hash(*tensors: torch.Tensor) -> str:
    """BLAKE2b digest (32 hex digits) of the tensors' bytes, in order: identifies data in
    a fingerprint."""
    digest = hashlib.blake2b(digest_size=16)
    for x in tensors:
        digest.update(x.detach().cpu().contiguous().numpy().view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


def check_fingerprint(path: Path, stored_json: str, current: dict[str, Any]) -> None:
    """Raise ValueError unless the checkpoint's stored fingerprint equals ``current``.

    The message names up to four differing entries, so a stale or foreign checkpoint
    is never resumed silently.
    """
    try:
        stored = json.loads(stored_json)
    except (TypeError, json.JSONDecodeError):
        raise ValueError(f"checkpoint {path} has an unreadable fingerprint") from None
    current = json.loads(json.dumps(current))  # tuples -> lists, as stored
    if stored == current:
        return
    diffs = [
        f"{k}: checkpoint {stored.get(k)!r} vs now {current.get(k)!r}"
        for k in sorted(set(stored) | set(current))
        if stored.get(k) != current.get(k)
    ]
    shown = "; ".join(d if len(d) < 300 else d[:300] + "..." for d in diffs[:4])
    raise ValueError(
        f"checkpoint {path} belongs to a different run ({shown}). "
        "Delete it or choose another checkpoint_path; it will not be resumed."
    )
