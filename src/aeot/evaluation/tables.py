"""Tables of scores: :func:`format_table` renders rows of :func:`aeot.evaluation.compare`
as plain text or Markdown, :func:`write_results` writes JSON + Markdown atomically."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from aeot._io import atomic_write, save_json

__all__ = ["format_table", "render_table", "write_results"]


def _fd_keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for key in row:
            fid = key == "FID" or key.startswith("FID-")  # "FID-2k": FID on 2,000 samples
            if (key.startswith("FD-") or fid) and not key.endswith("_std"):
                if key not in keys:
                    keys.append(key)
    return keys


def _fmt(value: float, std: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    text = f"{value:.{digits}f}"
    if std is not None and math.isfinite(std) and std > 0:
        text += f" ± {std:.{digits}f}"
    return text


def _cell(row: Mapping[str, Any], key: str, digits: int) -> str:
    if key not in row:
        return "-"
    return _fmt(float(row[key]), row.get(f"{key}_std"), digits)


def modes_cell(row: Mapping[str, Any], cell=_cell) -> str:
    """The modes cell of a row: modes covered (mean ± std over seeds, by ``cell``), then
    ``/ total`` when the row knows it; "-" without modes."""
    if "modes" not in row:
        return "-"
    text = cell(row, "modes", 1 if row.get("modes_std") else 0)
    if "n_modes" in row:
        text += f" / {round(float(row['n_modes']))}"
    return text


def format_table(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    """Render result rows (from :func:`compare`, or :func:`evaluate_samples` dicts with a
    ``"model"`` key) as an aligned plain-text table, or a Markdown table.

    Columns: model, modes (covered / total), KL, high-quality %, every Fréchet distance
    present (``FD-<space>`` / ``FID``), precision, recall, and the memorisation columns
    ``copies`` / ``NN ratio`` (:func:`aeot.metrics.memorisation`) when a row has them; a
    cell is ``mean ± std`` over seeds (just the mean for one seed) and ``-`` when not
    measured.
    """
    rows = list(rows)
    fd_keys = _fd_keys(rows)
    extra = [key for key in ("copies", "NN ratio") if any(key in row for row in rows)]
    header = ["model", "modes", "KL", "high-quality %", *fd_keys, "precision", "recall", *extra]
    table: list[list[str]] = []
    for row in rows:
        table.append(
            [
                str(row.get("model", "?")),
                modes_cell(row),
                _cell(row, "kl", 3),
                _cell(row, "high_quality_pct", 1),
                *(_cell(row, key, 3) for key in fd_keys),
                _cell(row, "precision", 3),
                _cell(row, "recall", 3),
                *(_cell(row, key, 3) for key in extra),
            ]
        )
    return render_table(header, table, markdown=markdown)


def render_table(header: list[str], table: list[list[str]], *, markdown: bool = False) -> str:
    """Lay out rows of strings as Markdown or as an aligned plain-text table."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in table]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in table)]) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)  # "nan" / "inf": valid JSON
    return value


def write_results(
    rows: Sequence[Mapping[str, Any]],
    path_json: str | os.PathLike,
    path_md: str | os.PathLike | None = None,
    *,
    title: str | None = None,
) -> None:
    """Write rows as JSON (``{"rows": [...]}``) and a Markdown table, both atomically.

    Non-finite numbers are stored as the strings ``"nan"`` / ``"inf"`` (strict JSON).
    """
    rows = list(rows)
    save_json(path_json, {"rows": _jsonable(rows)})
    if path_md is not None:
        text = (f"# {title}\n\n" if title else "") + format_table(rows, markdown=True)
        atomic_write(path_md, lambda tmp: tmp.write_text(text))
