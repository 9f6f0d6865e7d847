"""Reading a ReLU network from a file for :mod:`aeot.relu`: weights-only by default.

* :func:`load_weights` — a state dict from ``.pt`` (``torch.load(weights_only=True)``) or
  ``.safetensors``;
* :func:`load_model` — an ``nn.Sequential`` of the supported layers (or a list of
  them) pickled whole, read with ``weights_only=True`` and those layer classes allowed;
  ``trust_pickle=True`` unpickles anything, which runs any code the file holds.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path

__all__ = ["load_model", "load_weights"]

#: the layers :func:`aeot.relu.as_relu_network` reads; a pickled network made of these
#: alone loads with ``torch.load(weights_only=True)`` (no code from the file runs)
_SAFE_LAYER_NAMES = (
    "Sequential",
    "ModuleList",
    "Linear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "AvgPool1d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "Flatten",
    "Unflatten",
    "Identity",
    "ReLU",
    "LeakyReLU",
)

_PICKLE_WARNING = (
    "--trust-pickle: unpickling {path} runs any code the file holds; use it only on "
    "files you made yourself or fully trust"
)


def _weights_only_failure(message: str) -> tuple[str | None, str]:
    """From a weights-only unpickling error: the global it refused (or ``None``) and a
    one-line reason."""
    match = re.search(r"unsupported global:?\s+(?:global\s+)?([\w.]+)", message, re.IGNORECASE)
    if match:
        return match.group(1), f"it refers to {match.group(1)}"
    detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", message)
    reason = detail.group(1).strip() if detail else _first_line(Exception(message))
    return None, reason


def load_weights(path: Path) -> dict:
    """A state dict (name -> tensor) from a ``.safetensors`` file or a weights-only ``.pt``.

    Nothing in the file is executed: safetensors holds raw tensors, and ``.pt`` files
    are read with ``torch.load(weights_only=True)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is unreadable or does not hold a dict of tensors.
    """
    import pickle

    import torch

    from aeot._io import load_tensors

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_tensors(path, what="weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path} is not a weights-only torch file ({_weights_only_failure(str(exc))[1]}); "
            "it was not unpickled in full, which would run code from the file"
        ) from None
    except Exception as exc:
        raise ValueError(f"{path} is not a loadable torch file: {_first_line(exc)}") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} holds a {type(obj).__name__}, not a state dict of tensors "
            "(save one with torch.save(model.state_dict(), path))"
        )
    return obj


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def condensed_message(exc: BaseException, limit: int = 400) -> str:
    """The message of ``exc`` on one line, cut at ``limit`` characters."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_model(path: Path, *, trust_pickle: bool = False):
    """Load a network saved with ``torch.save(model, path)``.

    By default the file is read with ``torch.load(weights_only=True)``, allowing
    only tensors, containers and the layer classes ``aeot cells`` supports
    (``nn.Sequential``, ``nn.Linear``, ``nn.ReLU``, ... ; see ``_SAFE_LAYER_NAMES``):
    no code from the file runs. A file that needs anything else (a custom module
    class, or a crafted object) is refused with a ``ValueError`` naming what it
    refers to, unless ``trust_pickle`` is set: then it is unpickled in full, which
    runs any code the file holds, after a warning.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a torch file, needs full unpickling without
        ``trust_pickle``, or holds no module (e.g. a state dict).
    """
    import pickle

    import torch
    from torch import nn

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix == ".safetensors":
        raise ValueError(
            f"{path} holds weights only: give the architecture with --widths "
            "(a state dict is loaded into that network)"
        )
    safe_globals = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    layers = [getattr(nn, name) for name in _SAFE_LAYER_NAMES]
    allow = safe_globals([*layers, set]) if safe_globals else contextlib.nullcontext()
    try:
        with allow:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        culprit, reason = _weights_only_failure(str(exc))
        if not trust_pickle:
            what = (
                "needs full unpickling"
                if culprit
                else "cannot be read weights-only (corrupt, not a torch file, or a full pickle)"
            )
            raise ValueError(
                f"{path} {what} ({reason}); it was not unpickled in full, which would run "
                "code from the file. Save the network's state dict "
                "(torch.save(model.state_dict(), path)) and give its architecture with "
                "--widths, build it from the supported layers "
                f"({', '.join(_SAFE_LAYER_NAMES)}), or pass --trust-pickle if you made "
                "the file yourself"
            ) from None
        warnings.warn(_PICKLE_WARNING.format(path=path), UserWarning, stacklevel=2)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as full_exc:
            raise ValueError(
                f"{path} is not a loadable torch file: {_first_line(full_exc)}"
            ) from None
    except Exception as exc:
        raise ValueError(f"{path} is not a loadable torch file: {_first_line(exc)}") from None
    if isinstance(obj, dict):
        raise ValueError(
            f"{path} holds a dict (a state dict?), not a network; give its architecture "
            "with --widths, or save the nn.Sequential itself with torch.save(model, path)"
        )
    if not isinstance(obj, (nn.Module, list, tuple)):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not an nn.Module")
    if isinstance(obj, nn.Module):
        obj.eval()
    return obj
