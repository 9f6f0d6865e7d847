"""Named mode-collapse experiments (quick budgets: the numbers are smoke values)."""

import json

import pytest
import typer
from typer.testing import CliRunner

from aeot.cli.compare import compare
from aeot.evaluation.experiments import (
    EXPERIMENTS,
    _seed_list,
    build_experiment,
    format_summary,
    run_experiment,
)

MODEL_NAMES = ["data", "AE-OT", "AE-OT (reconstruction)", "GAN", "WGAN-GP", "VAE"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One classifier cache for the module (the digit classifier is trained once)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def grid_rows(cache):
    return run_experiment("grid25", seeds=1, quick=True, progress=False, cache_dir=cache)


def test_experiment_definitions():
    assert EXPERIMENTS == ("grid25", "ring8", "stacked-digits")
    for name in EXPERIMENTS:
        spec = build_experiment(name, quick=True)
        assert list(spec.models) == ["AE-OT", "GAN", "WGAN-GP", "VAE"]
        latents = {spec.models["AE-OT"].config.latent_dim}
        latents |= {spec.models[m].config.latent_dim for m in ("GAN", "WGAN-GP", "VAE")}
        assert len(latents) == 1  # the same latent size for every model
        assert spec.reference is not spec.dataset
    full = build_experiment("grid25")
    assert full.n_samples == 2500 and full.seeds == (0, 1, 2)
    assert full.models["AE-OT"].config.autoencoder == "identity"
    assert full.models["WGAN-GP"].config.gp_weight == 0.1
    stacked = build_experiment("stacked-digits")
    assert stacked.n_samples == 26000 and len(stacked.dataset) >= 20000
    assert stacked.dataset.x.shape[1:] == (3, 8, 8)


def test_unknown_experiment_is_a_clear_error(cache):
    with pytest.raises(ValueError, match=r"unknown experiment 'mnist'.*grid25, ring8"):
        build_experiment("mnist")
    with pytest.raises(ValueError, match="unknown experiment"):
        run_experiment("mnist", seeds=1, quick=True, cache_dir=cache)


def test_seed_list():
    assert _seed_list(None, (0, 1, 2)) == [0, 1, 2]
    assert _seed_list(2, (0,)) == [0, 1]
    assert _seed_list([4, 7], (0,)) == [4, 7]
    with pytest.raises(ValueError):
        _seed_list(0, (0,))
    with pytest.raises(ValueError):
        _seed_list([], (0,))


def test_quick_grid_rows(grid_rows):
    assert [r["model"] for r in grid_rows] == MODEL_NAMES
    for row in grid_rows:
        assert row["experiment"] == "grid25" and row["seeds"] == [0]
        for key in ("modes", "n_modes", "kl", "high_quality_pct", "precision", "recall"):
            assert key in row, (row["model"], key)
        assert "FD-data" in row
    by = {r["model"]: r for r in grid_rows}
    assert by["AE-OT (reconstruction)"]["kind"] == "reconstruction"
    for name in ("AE-OT", "GAN", "WGAN-GP", "VAE"):
        assert by[name]["kind"] == "model" and by[name]["fit_seconds"] > 0
    # at the quick budget (1000 training points, 500 samples) AE-OT still covers the grid
    assert by["AE-OT"]["modes"] >= 24 and by["AE-OT"]["high_quality_pct"] >= 90
    assert "FD-data_ratio_to_reconstruction" in by["AE-OT"]
    assert "FD-data_ratio_to_reconstruction" not in by["GAN"]


def test_quick_ring_covers_all_modes(cache):
    rows = run_experiment("ring8", seeds=[3], quick=True, progress=False, cache_dir=cache)
    by = {r["model"]: r for r in rows}
    assert by["AE-OT"]["modes"] == 8 and by["AE-OT"]["n_modes"] == 8
    assert by["AE-OT"]["seeds"] == [3]


def test_quick_stacked_digits(cache, tmp_path):
    rows = run_experiment(
        "stacked-digits", seeds=1, quick=True, progress=False, cache_dir=cache, out_dir=tmp_path
    )
    assert [r["model"] for r in rows] == MODEL_NAMES
    fd = "FD-digits-cnn-per-channel"
    for row in rows:
        for key in ("modes", "kl", fd, "precision", "recall"):
            assert key in row, (row["model"], key)
        assert row["n_modes"] == 1000
    by = {r["model"]: r for r in rows}
    assert by["AE-OT (reconstruction)"]["kind"] == "reconstruction"
    assert by["AE-OT"][f"{fd}_ratio_to_reconstruction"] == pytest.approx(
        by["AE-OT"][fd] / by["AE-OT (reconstruction)"][fd]
    )
    saved = json.loads((tmp_path / "stacked-digits.json").read_text())
    assert saved["experiment"] == "stacked-digits" and saved["quick"] is True
    assert [r["model"] for r in saved["rows"]] == MODEL_NAMES
    assert {"settings", "machine", "elapsed_seconds", "seeds"} <= set(saved)
    assert "FD ÷ recon" in (tmp_path / "stacked-digits.md").read_text()


def test_format_summary(grid_rows):
    text = format_summary(grid_rows)
    lines = text.splitlines()
    assert lines[0].startswith("model") and "fit s" in lines[0] and "FD ÷ recon" in lines[0]
    assert len(lines) == 2 + len(MODEL_NAMES)
    assert "/ 25" in text and "×" in text
    markdown = format_summary(grid_rows, markdown=True)
    assert markdown.startswith("| model |") and markdown.count("\n") == 2 + len(MODEL_NAMES)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("compare")(compare)

    @app.command("other")
    def _other() -> None:  # a second command keeps "compare" a named subcommand
        pass

    return app


def test_compare_command(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("AEOT_CACHE_DIR", str(cache))
    runner = CliRunner()
    out = tmp_path / "results"
    result = runner.invoke(
        _app(), ["compare", "ring8", "--quick", "--seeds", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "AE-OT (reconstruction)" in result.output and "high-quality %" in result.output
    # issue 15: a --quick table says that its budgets are a smoke test
    assert "--quick: smoke-test budgets" in result.output
    assert (out / "ring8.json").is_file() and (out / "ring8.md").is_file()
    rows = json.loads((out / "ring8.json").read_text())["rows"]
    assert [r["model"] for r in rows] == MODEL_NAMES

    result = runner.invoke(_app(), ["compare", "mnist", "--quick", "--out", str(out)])
    assert result.exit_code == 2
    assert "unknown experiment 'mnist'" in result.output
    result = runner.invoke(_app(), ["compare", "ring8", "--seeds", "0", "--out", str(out)])
    assert result.exit_code == 2
