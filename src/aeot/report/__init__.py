"""Report pictures and the HTML page of ``aeot demo``."""

from aeot.report.html import Section, render, write_report

__all__ = ["Section", "render", "write_report"]
