"""One persistence for every model: a folder of components, a config and a manifest.

A saved model is a folder::

    config.json        {"format": <model format>, "version": <aeot>, "config": {...}, ...}
    <name>.safetensors one file per component (a module's state dict, or named tensors)
    <child>/           a nested model folder (AE-OT-GAN's ``aeot/``), sealed by its own
                       manifest, whose digest config.json records as "<child>_manifest"
    manifest.json      the SHA-256 of every file above, written last

:func:`save_folder` writes it through :func:`aeot._io.atomic_folder` (the folder is
replaced whole: an interrupted save leaves the previous model or nothing, never a mix of
two fits). :func:`read_folder` checks the files against the manifest before anything is
read (a file changed, missing or added after the save is an error naming it; a folder
saved before manifests existed loads with an :class:`UnverifiedModelWarning`), then the
format, then hands out the components. :func:`load_model` opens any saved model by the
format its config.json names.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aeot._io import (
    MANIFEST,
    atomic_folder,
    file_sha256,
    interrupted_save_hint,
    load_json,
    load_tensors,
    save_json,
    save_tensors,
    verify_manifest,
    write_manifest,
)

CONFIG_FILE = "config.json"


class UnverifiedModelWarning(UserWarning):
    """A model folder without ``manifest.json`` (saved by aeot before manifests existed)
    was loaded: its files could not be checked against each other."""


def is_shape_list(value) -> bool:
    """Whether a config.json entry is a sample shape: a non-empty list of positive ints
    (JSON booleans refused)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )


class FolderWriter:
    """The files of a model folder being saved (see :func:`save_folder`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[str] = []
        self.meta: dict[str, Any] = {}

    def file(self, name: str) -> Path:
        """Register ``name`` (a file the caller writes itself) and return its path."""
        if Path(name).name != name or name in (CONFIG_FILE, MANIFEST) or name in self.files:
            raise ValueError(f"{name!r} cannot be a component file of a model folder")
        self.files.append(name)
        return self.folder / name

    def tensors(self, name: str, tensors: Mapping[str, torch.Tensor]) -> None:
        """Write ``<name>.safetensors`` holding ``tensors`` (moved to CPU)."""
        save_tensors(self.file(f"{name}.safetensors"), dict(tensors))

    def module(self, name: str, module: nn.Module) -> None:
        """Write ``<name>.safetensors`` holding ``module``'s state dict (on CPU)."""
        self.tensors(name, module.state_dict())

    def child(self, name: str, save) -> None:
        """Save a nested model by ``save(folder / name)`` (a model's own ``save``) and
        record the digest of its manifest in config.json as ``"<name>_manifest"``."""
        if Path(name).name != name:
            raise ValueError(f"{name!r} cannot be a child folder of a model folder")
        save(self.folder / name)
        self.meta[f"{name}_manifest"] = file_sha256(self.folder / name / MANIFEST)


@contextmanager
def save_folder(
    path: str | os.PathLike, *, format: str, config: Mapping[str, Any], meta=None
) -> Iterator[FolderWriter]:
    """Write a model folder at ``path``: the caller adds components to the yielded
    :class:`FolderWriter`; on exit config.json (``format``, the aeot version,
    ``config`` and the entries of ``meta``) and the manifest are written and the folder
    replaces ``path`` whole. Entries of an existing folder that the new one lacks
    (``checkpoints/``) are kept."""
    from aeot import __version__

    with atomic_folder(path) as folder:
        writer = FolderWriter(folder)
        yield writer
        body = {"format": format, "version": __version__, "config": dict(config)}
        body.update(meta or {})
        body.update(writer.meta)
        save_json(folder / CONFIG_FILE, body)
        write_manifest(folder, [*writer.files, CONFIG_FILE])


class SavedFolder:
    """A model folder checked by :func:`read_folder`: ``meta`` (its config.json),
    ``config`` (the model's config dict) and its components by name."""

    def __init__(self, folder: Path, meta: dict[str, Any], what: str) -> None:
        self.folder = folder
        self.meta = meta
        self.what = what

    @property
    def config(self) -> dict[str, Any]:
        config = self.meta.get("config")
        if not isinstance(config, dict):
            raise ValueError(f"{self.folder / CONFIG_FILE} is damaged: 'config' must be an object")
        return config

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        """The tensors of ``<name>.safetensors`` (on CPU)."""
        path = self.folder / f"{name}.safetensors"
        return load_tensors(path, what=f"{self.what} {name}")

    def load_module(self, name: str, module: nn.Module, device=None) -> nn.Module:
        """Load ``<name>.safetensors`` into ``module`` and return it (in eval mode).

        ``module`` may be built on the ``meta`` device (``with torch.device("meta"):``):
        its tensor names and shapes are then compared with the file's before any memory
        is allocated, so a config that asks for huge networks costs nothing unless the
        file holds them; it is materialised on ``device``. A file whose tensors do not
        fit, or hold NaN or inf, is a ValueError naming it.
        """
        path = self.folder / f"{name}.safetensors"
        state = self.tensors(name)
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            missing = sorted(set(expected) - set(found))
            extra = sorted(set(found) - set(expected))
            wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
            what = []
            if missing:
                what.append(f"missing {missing[:4]}")
            if extra:
                what.append(f"unexpected {extra[:4]}")
            if wrong:
                k = wrong[0]
                what.append(f"{k} has shape {found[k]}, the config gives {expected[k]}")
            raise ValueError(
                f"{path} does not fit the {self.what} {name} built from its config: "
                + "; ".join(what)
            )
        for key, tensor in state.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{path}: {key} holds NaN or inf")
        if any(t.is_meta for t in module.state_dict().values()):
            module = module.to_empty(device=device if device is not None else "cpu")
        elif device is not None:
            module = module.to(device)
        module.load_state_dict(state)
        return module.eval()

    def child(self, name: str, what: str = "model") -> Path:
        """The nested model folder ``name`` (a ``what``), checked to be the one saved
        with this model (its manifest's digest equals the one config.json recorded)."""
        recorded = self.meta.get(f"{name}_manifest")
        folder = self.folder / name
        if recorded is not None:
            inner = folder / MANIFEST
            if not inner.is_file() or file_sha256(inner) != recorded:
                raise ValueError(
                    f"{folder} is not the {what} this {self.what} was saved with (its "
                    f"{MANIFEST} is missing or differs from the one recorded in "
                    f"{self.folder / CONFIG_FILE})"
                )
        return folder


def read_folder(
    path: str | os.PathLike, *, format: str, files: Iterable[str], what: str
) -> SavedFolder:
    """Open a folder written by :func:`save_folder` whose config.json names ``format``.

    ``what`` names the model in messages ("AE-OT-GAN": "AE-OT-GAN model folder not
    found", "... is not an AE-OT-GAN model config").
    ``files`` are the component files a loader may read (config.json included): each
    is checked against the manifest first (:func:`aeot._io.verify_manifest`); without a
    manifest an :class:`UnverifiedModelWarning` says the files cannot be checked.
    Raises FileNotFoundError for a missing folder, ValueError for a damaged or foreign
    one.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{what} model folder not found: {folder}{interrupted_save_hint(folder)}"
        )
    if not verify_manifest(folder, {*files, CONFIG_FILE}):
        warnings.warn(
            f"{what} model folder {folder} has no {MANIFEST} (saved by an older aeot?): its "
            "files cannot be checked against each other. Save it again to add one.",
            UnverifiedModelWarning,
            stacklevel=3,
        )
    meta = load_json(folder / CONFIG_FILE, what=f"{what} config")
    if not isinstance(meta, dict) or meta.get("format") != format:
        raise ValueError(f"{folder / CONFIG_FILE} is not an {what} model config")
    return SavedFolder(folder, meta, what)


# the model class of each folder format (module, attribute), imported on first use
_FORMATS = {
    "aeot-model": ("aeot.pipeline", "AEOT"),
    "aeot-gan-model": ("aeot.aeotgan", "AEOTGAN"),
    "aeot-baseline-model": ("aeot.baselines", None),  # the class is config.json's "estimator"
}


def load_model(path: str | os.PathLike, *, device: str | None = None):
    """Open any saved aeot model (AE-OT, AE-OT-GAN or a baseline) by the format its
    config.json names, onto ``device`` (default: the saved one)."""
    import importlib

    folder = Path(path)
    config = folder / CONFIG_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder not found: {folder}{interrupted_save_hint(folder)}")
    if not config.is_file():
        raise FileNotFoundError(f"{folder} holds no {CONFIG_FILE}: not a saved aeot model")
    meta = load_json(config, what="model config")
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt not in _FORMATS:
        known = ", ".join(sorted(_FORMATS))
        raise ValueError(
            f"{config} is not an aeot model config: it names format {fmt!r}, not one of "
            f"aeot's ({known})"
        )
    module, name = _FORMATS[fmt]
    mod = importlib.import_module(module)
    cls = getattr(mod, name) if name is not None else mod.baseline_class(meta.get("estimator"))
    return cls.load(folder, device=device)


__all__ = [
    "CONFIG_FILE",
    "FolderWriter",
    "SavedFolder",
    "UnverifiedModelWarning",
    "is_shape_list",
    "load_model",
    "read_folder",
    "save_folder",
]
