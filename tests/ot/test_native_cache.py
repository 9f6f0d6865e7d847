"""The native-kernel cache trusts nothing it finds: damaged, planted or foreign
libraries are never loaded, unsafe cache folders are refused, and a missing compiler
is announced.

Each case runs in a fresh interpreter with ``AEOT_CACHE_DIR`` set to a temporary
folder, so that a crash (a truncated library used to kill every process with SIGBUS)
fails the test instead of pytest, and the kernel library of this process is untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

COMPILER = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(COMPILER is None, reason="needs a C compiler")

# Loads the kernels, checks their answers on exactly representable data (integer
# values: no rounding, ties to the lowest index like torch), prints a JSON summary.
_PROBE = textwrap.dedent(
    """
    import json, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import sys, types
        import torch
        import aeot
        # the kernel modules alone: skip aeot.ot's __init__ (scipy, sklearn) to save time
        package = types.ModuleType("aeot.ot")
        package.__path__ = [aeot.__path__[0] + "/ot"]
        sys.modules["aeot.ot"] = package
        from aeot.ot import _native
        from aeot.ot.kernels import ScoreKernel

        available = _native.available()
        correct = True
        gen = torch.Generator().manual_seed(0)
        for dtype in (torch.float32, torch.float64):
            y = torch.randint(-50, 50, (300, 3), generator=gen).to(dtype)
            x = torch.randint(-50, 50, (2000, 3), generator=gen).to(dtype)
            h = torch.randint(-50, 50, (300,), generator=gen).to(dtype)
            cells = ScoreKernel(y).argmax(x, h)[0]
            exact = (x.double() @ y.double().t() + h.double()).argmax(1)
            correct = correct and torch.equal(cells, exact)
    print(json.dumps({
        "available": available,
        "correct": bool(correct),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
    }))
    """
)


def _environment(cache: Path, **env: str) -> dict[str, str]:
    """This environment without AEOT_NATIVE / CC, with the cache and ``env`` set."""
    full = {k: v for k, v in os.environ.items() if k not in ("AEOT_NATIVE", "CC")}
    return {**full, "AEOT_CACHE_DIR": str(cache), **env}


def _probe(cache: Path, **env: str) -> dict:
    full_env = _environment(cache, **({"CC": COMPILER} if COMPILER else {}) | env)
    run = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300, env=full_env
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def _libraries(cache: Path) -> list[Path]:
    return sorted((cache / "native").glob("aeot_kernels_*.so"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cache(tmp_path) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture(scope="module")
def _genuine(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("genuine") / "cache"
    folder.mkdir(mode=0o700)
    if COMPILER is not None:
        result = _probe(folder)
        assert result == {"available": True, "correct": True, "warnings": []}
        assert _libraries(folder)
    return folder


@pytest.fixture
def built(_genuine, tmp_path) -> Path:
    """A private copy of a cache holding a genuine build."""
    if COMPILER is None:
        pytest.skip("needs a C compiler")
    return Path(shutil.copytree(_genuine, tmp_path / "cache"))


def _planted_library(tmp_path: Path, marker: Path) -> Path:
    """A shared library whose constructor creates ``marker`` as soon as it is loaded."""
    source = tmp_path / "planted.c"
    source.write_text(
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void planted(void) {\n"
        f'  FILE* f = fopen("{marker}", "w"); if (f) {{ fputs("ran", f); fclose(f); }}\n'
        "}\n"
        "int fused_available(void) { return 0; }\n"
    )
    out = tmp_path / "planted.so"
    subprocess.run([COMPILER, "-shared", "-fPIC", str(source), "-o", str(out)], check=True)
    return out


@needs_cc
def test_a_build_records_its_hash_and_origin_beside_it(built):
    native = built / "native"
    assert stat.S_IMODE(native.stat().st_mode) & 0o077 == 0  # created owner-only
    for library in _libraries(built):
        manifest = json.loads(library.with_suffix(".json").read_text())
        assert manifest["sha256"] == _sha256(library)
        source = Path(__file__).parents[2] / "src" / "aeot" / "ot" / "_native.c"
        assert manifest["source_sha256"] == _sha256(source)
        assert "-march=native" in manifest["flags"] and manifest["cpu"] and manifest["compiler"]
    assert not [p for p in native.iterdir() if p.name.startswith(".")]  # no temp leftovers


@needs_cc
@pytest.mark.parametrize("keep", [0, 0.5])
def test_truncated_library_is_rebuilt(built, keep):
    for library in _libraries(built):
        data = library.read_bytes()
        library.write_bytes(data[: int(len(data) * keep)])
    result = _probe(built)
    assert result == {"available": True, "correct": True, "warnings": []}
    for library in _libraries(built):
        assert json.loads(library.with_suffix(".json").read_text())["sha256"] == _sha256(library)


@needs_cc
@pytest.mark.parametrize("how", ["replace", "symlink", "no-manifest"])
def test_planted_library_with_a_wrong_hash_is_never_loaded(built, tmp_path, how):
    marker = tmp_path / "marker"
    planted = _planted_library(tmp_path, marker)
    for library in _libraries(built):
        library.unlink()
        if how == "symlink":
            library.symlink_to(planted)
        else:
            shutil.copy(planted, library)
        if how == "no-manifest":
            library.with_suffix(".json").unlink()
    result = _probe(built)
    assert not marker.exists(), "the planted library's constructor ran"
    assert result == {"available": True, "correct": True, "warnings": []}
    for library in _libraries(built):
        assert not library.is_symlink()
        assert _sha256(library) != _sha256(planted)


@needs_cc
def test_manifest_of_another_build_forces_a_rebuild(built, tmp_path):
    """A manifest naming other flags or source is not this build's: rebuilt, not loaded."""
    marker = tmp_path / "marker"
    planted = _planted_library(tmp_path, marker)
    for library in _libraries(built):
        manifest_path = library.with_suffix(".json")
        manifest = json.loads(manifest_path.read_text())
        shutil.copy(planted, library)
        manifest.update(sha256=_sha256(planted), source_sha256="0" * 64)
        manifest_path.write_text(json.dumps(manifest))
    assert _probe(built)["correct"]
    assert not marker.exists()


@needs_cc
@pytest.mark.parametrize("which", ["root", "native"])
def test_group_or_world_writable_cache_is_refused(built, tmp_path, which):
    """Even a library whose manifest matches is not loaded from a folder others can
    write: the kernels are built privately for the process instead."""
    marker = tmp_path / "marker"
    planted = _planted_library(tmp_path, marker)
    for library in _libraries(built):  # a forged but consistent manifest
        manifest_path = library.with_suffix(".json")
        manifest = json.loads(manifest_path.read_text())
        shutil.copy(planted, library)
        manifest_path.write_text(json.dumps({**manifest, "sha256": _sha256(planted)}))
    folder = built if which == "root" else built / "native"
    folder.chmod(0o777 if which == "root" else 0o770)
    before = sorted(p.name for p in (built / "native").iterdir())
    result = _probe(built)
    assert not marker.exists(), "a library from the unsafe cache was loaded"
    assert result["available"] and result["correct"]
    [warning] = result["warnings"]
    assert f"{folder} is writable by group or others" in warning
    assert "private temporary folder" in warning
    assert sorted(p.name for p in (built / "native").iterdir()) == before  # nothing written


@needs_cc
def test_fresh_world_writable_cache_root_gets_nothing_written(tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(0o777)
    result = _probe(root)
    assert result["available"] and result["correct"]
    assert any("writable by group or others" in w for w in result["warnings"])
    assert list(root.iterdir()) == []


@needs_cc
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_cache_owned_by_another_user_is_refused(built):
    os.chown(built / "native", 65534, 65534)
    result = _probe(built)
    assert result["available"] and result["correct"]
    assert any("not by the current user" in w for w in result["warnings"])


def test_missing_compiler_is_announced_once(cache, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    full_env = _environment(cache, PATH=str(empty))
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "from aeot.ot import _native\n"
        "print(_native.available(), _native.available(), _native.fused_available())"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=full_env
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["False", "False", "False"]
    assert run.stderr.count("RuntimeWarning") == 1
    assert "no C compiler found" in run.stderr and "pure-torch path" in run.stderr


def test_failing_compiler_is_announced(cache):
    result = _probe(cache, CC="/bin/false")
    assert result["available"] is False and result["correct"]
    [warning] = result["warnings"]
    assert "could not be built" in warning and "pure-torch path" in warning


def test_native_off_is_silent(cache):
    result = _probe(cache, AEOT_NATIVE="0")
    assert result == {"available": False, "correct": True, "warnings": []}
