"""The demo's report: one list of blocks rendered twice, as Markdown and as standalone HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from ..fileio import write_bytes_atomic


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def to_markdown(title: str, warnings: list[str], sections: list[Section], root: Path) -> str:
    parts = [f"# {title}", ""]
    parts += [f"> **Warning:** {w}" for w in warnings]
    for section in sections:
        parts += ["", f"## {section.title}", ""]
        parts += [p + "\n" for p in section.paragraphs]
        parts += [_markdown_table(t) + "\n" for t in section.tables]
        parts += [f"![{i.caption}]({i.path.relative_to(root)})\n" for i in section.images]
    return "\n".join(parts).rstrip() + "\n"


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
    "th{background:#f3f3f3}.warn{background:#fff3cd;border:1px solid #e0c36b;padding:.6em}"
    "img{max-width:100%;border:1px solid #ddd}figcaption{color:#555}"
)


def to_html(title: str, warnings: list[str], sections: list[Section], root: Path) -> str:
    out = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"]
    out.append(f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>")
    out += [f"<p class=warn><b>Warning:</b> {html.escape(w)}</p>" for w in warnings]
    for section in sections:
        out.append(f"<h2>{html.escape(section.title)}</h2>")
        out += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        out += [_html_table(t) for t in section.tables]
        for image in section.images:
            src = html.escape(str(image.path.relative_to(root)))
            cap = html.escape(image.caption)
            out.append(f"<figure><img src='{src}' alt='{cap}'><figcaption>{cap}</figcaption>")
            out.append("</figure>")
    return "\n".join(out) + "\n"


def write_report(
    folder: Path, title: str, warnings: list[str], sections: list[Section]
) -> tuple[Path, Path]:
    """`report.md` and `report.html` in `folder`; image paths are relative to it."""
    md, page = folder / "report.md", folder / "report.html"
    write_bytes_atomic(md, to_markdown(title, warnings, sections, folder).encode())
    write_bytes_atomic(page, to_html(title, warnings, sections, folder).encode())
    return md, page
