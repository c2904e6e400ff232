"""Writing the report: ``results.json`` (everything), ``report.md`` and ``report.html``.

The HTML page is self-contained: its style is inline and its plots are PNGs embedded as
``data:`` URLs, so it can be mailed or archived as one file and opened offline.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from describe_local.errors import OutputError
from describe_local.evaluation.tables import Section, Table, sections

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #1a202c; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #cbd5e0; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .85rem; }
th, td { border: 1px solid #cbd5e0; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #edf2f7; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
img { max-width: 100%; border: 1px solid #e2e8f0; }
code { background: #edf2f7; padding: 0 .2rem; }
.sha { font-family: monospace; font-size: .75rem; }
"""


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinity become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def markdown(results: dict[str, Any]) -> str:
    out = ["# describe-local evaluation report", ""]
    for section in sections(results):
        out += [f"## {section.title}", ""]
        for line in section.lines:
            out += [line, ""]
        if section.plot:
            out += ["*The plot is in report.html.*", ""]
        for table in section.tables:
            out += [*_md_table(table), ""]
    return "\n".join(out).rstrip() + "\n"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    lines = [f"*{table.caption}*", ""] if table.caption else []
    lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def _inline(text: str) -> str:
    """Escaped text, with `code` spans kept as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _is_number(cell: str) -> bool:
    return bool(cell) and cell.replace(".", "", 1).replace("%", "").replace("–", "").strip().isdigit()


def _html_table(table: Table) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in table.headers)
    body = []
    for row in table.rows:
        cells = []
        for header, cell in zip(table.headers, row, strict=True):
            cls = ' class="sha"' if header == "sha256" else ' class="n"' if _is_number(cell) else ""
            cells.append(f"<td{cls}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


ALT = {"speed": "Bar chart: median time per description on this machine, by part, beside the AWS original's total "
                 "(pale and hatched where the two cannot be compared)",
       "faces": "Line chart: identification accuracy and false-accept rate of each face set over the tolerance",
       "text": "Bar chart: the share of each photo's phrases or words that was read"}


def page(results: dict[str, Any], plots: dict[str, bytes]) -> str:
    """The self-contained HTML report."""
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>describe-local evaluation report</title>", f"<style>{STYLE}</style></head><body><main>",
             "<h1>describe-local evaluation report</h1>"]
    for section in sections(results):
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{_inline(line)}</p>" for line in section.lines]
        if section.plot and section.plot in plots:
            data = base64.b64encode(plots[section.plot]).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(ALT[section.plot])}">'
                         "</figure>")
        parts += [_html_table(t) for t in section.tables]
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def draw_plots(results: dict[str, Any]) -> dict[str, bytes]:
    from describe_local.evaluation import plots

    drawn = {}
    if results.get("speed") and any("runs" in r for r in results["speed"]["rows"]):
        drawn["speed"] = plots.speed_bars(results["speed"]["rows"])
    if results.get("faces"):
        drawn["faces"] = plots.face_curves(results["faces"])
    if results.get("text"):
        drawn["text"] = plots.ocr_recall(results["text"])
    return drawn


def write_report(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the three files into ``out`` (made if need be); returns their paths."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the report folder {out}: {exc.strerror}") from None
    results = _clean(results)
    files = {"json": out / "results.json", "md": out / "report.md", "html": out / "report.html"}
    texts = {"json": json.dumps(results, indent=1, ensure_ascii=False) + "\n", "md": markdown(results),
             "html": page(results, draw_plots(results))}
    for key, path in files.items():
        try:
            path.write_text(texts[key], encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    return files


__all__ = ["Section", "markdown", "page", "write_report"]
