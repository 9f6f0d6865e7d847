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
