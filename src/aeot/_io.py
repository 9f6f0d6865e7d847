"""Atomic file writes (temporary file in the same folder, fsync, rename) and checkpoint helpers."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from aeot._checks import check_output_path  # noqa: F401  (re-exported: light, no torch)


def _umask() -> int:
    """The process umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    An interrupted write leaves the previous file (if any) untouched. The temporary
    file ``.<name>.<pid>-*.tmp`` of a writer that was killed is deleted by the next
    write of ``path`` once that process is gone.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*-*.tmp"):
        _remove_if_orphaned(stale, stale.name[len(target.name) + 2 :])  # a killed writer's
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    try:
        # mkstemp makes 0600 files: give the result the mode open() would (umask)
        os.chmod(tmp, 0o666 & ~_umask())
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
    except RecursionError:
        raise ValueError(f"{what} {path} is nested too deeply to be an aeot file") from None


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
    if not isinstance(stored, dict):
        raise ValueError(f"checkpoint {path} has an unreadable fingerprint")
    current = json.loads(json.dumps(current))  # tuples -> lists, as stored
    if stored == current:
        return
    diffs = []
    for k in sorted(set(stored) | set(current)):
        old, new = stored.get(k), current.get(k)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):  # name the nested entries
            diffs += [
                f"{k}.{j}: checkpoint {old.get(j)!r} vs now {new.get(j)!r}"
                for j in sorted(set(old) | set(new))
                if old.get(j) != new.get(j)
            ]
        else:
            diffs.append(f"{k}: checkpoint {old!r} vs now {new!r}")
    shown = "; ".join(d if len(d) < 300 else d[:300] + "..." for d in diffs[:4])
    raise ValueError(
        f"checkpoint {path} belongs to a different run ({shown}). "
        "Delete it or choose another checkpoint_path; it will not be resumed."
    )


# ------------------------------------------------------------------ model folders

MANIFEST = "manifest.json"
_MANIFEST_FORMAT = "aeot-manifest"


@contextmanager
def atomic_folder(path: str | os.PathLike):
    """Yield a new empty sibling folder of ``path``; on success it replaces ``path`` whole.

    The caller writes every file of the new folder (its manifest last, see
    :func:`write_manifest`). Then entries of an existing ``path`` that the new folder
    does not have (a ``checkpoints/`` subfolder, say) are moved into it, the old
    folder is renamed aside, the new one renamed onto ``path`` and the old one
    deleted. An error (or a kill) before the rename leaves ``path`` as it was; an
    error removes the new folder, so no temporary files are left behind. Only a kill
    between the two renames (microseconds) leaves ``path`` absent, with the old model
    in ``.<name>.old-*`` next to it (:func:`interrupted_save_hint` names it). A kill
    before the swap leaves the new folder ``.<name>.saving-<pid>-*``, which the next
    save of ``path`` deletes once that process is gone (and ``.<name>.old-<pid>-*``
    once it has replaced ``path``).
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} exists and is not a folder: cannot write a model there")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_saves(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders; mkdir respects the umask
    moved: list[str] = []
    old: Path | None = None
    try:
        yield tmp
        if target.is_dir():
            for entry in sorted(os.listdir(target)):
                if not (tmp / entry).exists():
                    os.rename(target / entry, tmp / entry)
                    moved.append(entry)
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent)
            )
            os.rename(target, old / "model")
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        _fsync_dir(target.parent)
        _remove_stale_saves(target, ("saving", "old"))  # ``path`` holds a whole model now
    except BaseException:
        if old is not None and (old / "model").is_dir() and not target.exists():
            os.rename(old / "model", target)  # the swap failed half-way: undo it
        for entry in moved:  # give the old folder back what it had
            if (tmp / entry).exists() and target.is_dir() and not (target / entry).exists():
                os.rename(tmp / entry, target / entry)
        if old is not None and old.exists() and not (old / "model").exists():
            shutil.rmtree(old, ignore_errors=True)
        if tmp.exists() and tmp != target:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_stale_saves(target: Path, kinds=("saving",)) -> None:
    """Delete ``.<name>.<kind>-<pid>-*`` folders of ``target`` left by killed processes
    (a process still running, or one whose pid cannot be read, is left alone)."""
    for kind in kinds:
        for stale in target.parent.glob(f".{target.name}.{kind}-*-*"):
            _remove_if_orphaned(stale, stale.name[len(f".{target.name}.{kind}-") :])


def _remove_if_orphaned(stale: Path, rest: str) -> None:
    pid = rest.split("-", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    except (OSError, OverflowError):
        return


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible everywhere (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def interrupted_save_hint(path: str | os.PathLike) -> str:
    """A sentence naming the old model kept aside by an interrupted :func:`atomic_folder`
    swap of ``path`` (empty if there is none)."""
    target = Path(path)
    kept = sorted(target.parent.glob(f".{target.name}.old-*/model"))
    if not kept:
        return ""
    return f" (an interrupted save left the previous model in {kept[-1]}; move it back)"


def write_manifest(folder: str | os.PathLike, names) -> None:
    """Write ``manifest.json`` with the SHA-256 of each file ``names`` in ``folder``.

    Written last, it seals the folder: :func:`verify_manifest` then detects a file
    that is missing, changed, or added afterwards.
    """
    folder = Path(folder)
    files = {name: file_sha256(folder / name) for name in sorted(names)}
    save_json(folder / MANIFEST, {"format": _MANIFEST_FORMAT, "files": files})


def verify_manifest(folder: str | os.PathLike, names) -> bool:
    """Check ``folder``'s files against its ``manifest.json``.

    ``names`` are the files a loader may read: each one present must be listed, and
    each listed file must exist with the recorded SHA-256. Raises FileNotFoundError
    naming a listed file that is missing, ValueError naming the first file that
    differs or is unlisted; returns False when the
    folder has no manifest at all (written before manifests existed), True otherwise.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        return False
    manifest = load_json(path, what="model manifest")
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != _MANIFEST_FORMAT
        or not isinstance(files, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise ValueError(f"{path} is damaged: not an aeot manifest")
    for name, digest in sorted(files.items()):
        if Path(name).name != name:
            raise ValueError(f"{path} is damaged: it lists {name!r}, not a file of the folder")
        file = folder / name
        if not file.is_file():
            raise FileNotFoundError(
                f"{file} is missing but listed in {path}: the model folder is incomplete"
            )
        if file_sha256(file) != digest:
            raise ValueError(
                f"{file} differs from the copy recorded in {path} (SHA-256 mismatch): "
                "it was changed, damaged or copied from another model after the save"
            )
    for name in sorted(names):
        if (folder / name).exists() and name not in files:
            raise ValueError(
                f"{folder / name} is not listed in {path}: it was added after the save "
                "(from another model?)"
            )
    return True
