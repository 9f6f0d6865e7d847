"""A self-contained HTML report: sections of text, tables and images (relative paths)."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from aeot._io import atomic_write

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: .5em; vertical-align: top; }
figcaption { font-size: .85em; color: #555; max-width: 520px; }
img { max-width: 520px; image-rendering: pixelated; border: 1px solid #eee; }
.note { color: #555; font-size: .9em; }
"""


@dataclass
class Section:
    """One report section: a title, paragraphs, tables and figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list]]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render(title: str, sections: list[Section], intro: str = "") -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p class='note'>{html.escape(intro)}</p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        for header, rows in section.tables:
            parts.append(
                "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
            )
            parts += [
                "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows
            ]
            parts.append("</table>")
        for src, caption in section.figures:
            link = html.escape(src)
            parts.append(
                f"<figure><a href='{link}' title='full size'><img src='{link}' "
                f"alt='{html.escape(caption)}'></a>"
                f"<figcaption>{html.escape(caption)} (click for full size)</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    path: str | os.PathLike, title: str, sections: list[Section], intro: str = ""
) -> Path:
    """Write the HTML page atomically; image paths are relative to its folder."""
    path = Path(path)
    text = render(title, sections, intro)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
