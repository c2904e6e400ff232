"""The report's plots as PNG bytes (matplotlib, Agg: no display needed)."""

from __future__ import annotations

import io
import statistics
from typing import Any

from describe_local.errors import EvalToolMissing

SAY = ("compose", "translate", "speech", "encode")
COLOURS = {"decode": "#9aa5b1", "analysis": "#2b6cb0", "say": "#38a169", "other": "#d6bcfa", "aws": "#ed8936"}


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise EvalToolMissing("the report's plots need matplotlib: pip install 'describe-local[eval]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    data = io.BytesIO()
    fig.savefig(data, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return data.getvalue()


def segments(row: dict[str, Any]) -> dict[str, float]:
    """A speed row's median total in parts: decode, the three analysis stages (overlapping when
    parallel, so their wall time), the spoken part (compose to MP3) and the rest."""
    runs = row["runs"]
    part = {
        "decode": statistics.median(r.get("decode", 0.0) for r in runs),
        "analysis": statistics.median(r.get("analysis", 0.0) for r in runs),
        "say": statistics.median(sum(r.get(s, 0.0) for s in SAY) for r in runs),
    }
    total = statistics.median(r.get("total", 0.0) for r in runs)
    part["other"] = max(0.0, total - sum(part.values()))
    return part


def speed_bars(rows: list[dict[str, Any]]) -> bytes:
    """Per photo and mode, our median time in parts beside the AWS original's total."""
    plt = pyplot()
    timed = [r for r in rows if "runs" in r]
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    labels, x = [], 0.0
    for row in timed:
        bottom = 0.0
        for name, ms in segments(row).items():
            ax.bar(x, ms, 0.8, bottom=bottom, color=COLOURS[name], label=name if x == 0 else None)
            bottom += ms
        # A total the cloud's cannot be set against (no caption ran here) is drawn hatched and pale.
        like = bool(row.get("comparable"))
        ax.bar(x + 0.85, row["aws_ms"], 0.8, color=COLOURS["aws"], alpha=1.0 if like else 0.35,
               hatch=None if like else "//", label=None if x else "AWS original" if like else
               "AWS original (with a caption: not comparable)")
        cloud = row.get("cloud_case", row["case"])
        labels.append((x + 0.42, f"{row['case']}" + (f" (AWS: {cloud})" if cloud != row["case"] else "")
                       + f"\n{row['mode']}"))
        x += 2.3
    ax.set_xticks([p for p, _ in labels], [t for _, t in labels], fontsize=8)
    ax.set_ylabel("median ms per photo")
    compared = any(r.get("comparable") for r in timed)
    ax.set_title("Time per description: this machine (left) and AWS (right)" if compared else
                 "Time per description on this machine (left); AWS (right) includes a caption not run here")
    ax.legend(fontsize=8, ncols=5, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def face_curves(face_sets: list[dict[str, Any]]) -> bytes:
    """Identification accuracy and false-accept rate over the tolerance, per face set."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for n, result in enumerate(face_sets):
        colour = f"C{n}"
        c = result["curve"]
        ax.plot(c["tolerance"], c["accuracy"], color=colour, label=f"{result['name']}: accuracy")
        ax.plot(c["tolerance"], c["false_accept"], color=colour, linestyle="--",
                label=f"{result['name']}: false accepts")
    if face_sets:
        tolerance = face_sets[0]["tolerance"]
        ax.axvline(tolerance, color="black", linewidth=0.8, linestyle=":")
        ax.annotate(f"tolerance {tolerance:g}", (tolerance, 0.5), xytext=(4, 0), textcoords="offset points", fontsize=8)
    ax.set_xlabel("tolerance (face distance)")
    ax.set_ylabel("share of probes")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Faces: identification accuracy and false accepts over the tolerance")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot: the lines fill it
    ax.grid(alpha=0.3)
    return _png(fig)


def ocr_recall(text_sets: list[dict[str, Any]]) -> bytes:
    """Each photo's recall (phrases or words), one colour per set."""
    plt = pyplot()
    rows = [(s["name"], r) for s in text_sets for r in s["photos"]]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2))
    names = list(dict.fromkeys(name for name, _ in rows))
    for y, (name, row) in enumerate(rows):
        recall = row.get("recall")
        ax.barh(y, recall or 0.0, color=f"C{names.index(name)}",
                label=name if row is next(r for n, r in rows if n == name) else None)
        ax.text((recall or 0.0) + 0.01, y, "failed" if recall is None else f"{recall:.0%}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [row["file"] for _, row in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("recall (phrases, or words of pages and ICDAR sets)")
    ax.set_title("Text read per photo")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: bars reach the right edge
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
