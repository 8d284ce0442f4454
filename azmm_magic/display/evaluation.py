"""How an :class:`~azmm_magic.features.evaluation.Evaluation` and an ``EvaluationTable`` look.

In a notebook: the headline (correct / n, accuracy with its 95 % interval, failures apart), what was compared and
what the run took, a per-class table next to the confusion matrix (a matplotlib figure as PNG, wrong cells
framed in red), then a gallery of the mistakes (thumbnail, row, expected and answered) and the failures. In a
terminal the same as text. Labels and answers are untrusted text: escaped in HTML, control characters removed in
text.
"""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING, Any

from azmm_magic.display.bundle import ERROR_BORDER, join_lines
from azmm_magic.display.gallery import thumbnail_src
from azmm_magic.display.terminal import terminal_text
from azmm_magic.display.usage import figure_png

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.evaluation import Evaluation, EvaluationTable, Scored

MISTAKE_TILES = 24
PLAIN_MISTAKES = 20
FAILURES_SHOWN = 10
CLASS_HEADERS = ("class", "support", "precision", "recall")

_BOX = "font-family: var(--jp-ui-font-family, inherit); line-height: 1.4; margin: 0.3em 0;"
_TABLE = "border-collapse: collapse; font-size: 0.85em;"
_CELL = "padding: 2px 10px; text-align: right; border-bottom: 1px solid rgba(128,128,128,0.25);"
_HEAD = "padding: 2px 10px; text-align: right; border-bottom: 1px solid rgba(128,128,128,0.6); font-weight: 600;"
_GRID = "display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 8px; margin: 0.4em 0;"
_TILE = (f"border: 1px solid {ERROR_BORDER}; border-radius: 6px; padding: 4px; font-size: 0.78em; "
         "line-height: 1.3; overflow: hidden;")
_THUMB = "width: 100%; height: 80px; object-fit: contain; background: rgba(128,128,128,0.08); border-radius: 3px;"
_MUTED = "font-size: 0.85em; opacity: 0.75;"


def _text(value: Any) -> str:
    """Untrusted text on one line for a terminal (escapes and control characters removed)."""
    return " ".join(terminal_text(str(value)).split())


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.0f} %"


def class_table_rows(evaluation: Evaluation) -> list[tuple[str, ...]]:
    """The per-class table as strings."""
    return [(label, str(support), _pct(precision), _pct(recall))
            for label, support, precision, recall in evaluation.class_rows()]


def _html_table(headers: tuple[str, ...], rows: list[tuple[str, ...]], *, first_left: bool = True) -> str:
    def cell(value: str, i: int, style: str, tag: str) -> str:
        align = style.replace("text-align: right", "text-align: left") if first_left and i == 0 else style
        return f"<{tag} style='{align}'>{html.escape(value)}</{tag}>"

    head = "".join(cell(h, i, _HEAD, "th") for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell(v, i, _CELL, "td") for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table style='{_TABLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _where(s: Scored) -> str:
    return f"row {s.row}" if s.row is not None else f"#{s.index}"


def _mistake_tile(s: Scored) -> str:
    src = thumbnail_src(s.outcome, s.source)
    img = (f'<img src="{html.escape(src, quote=True)}" alt="{html.escape(_where(s))}" style="{_THUMB}"/>'
           if src else f'<div style="{_THUMB}"></div>')
    answer = s.answer if s.answer is not None else "(no value)"
    return (f'<div style="{_TILE}" title="{html.escape(str(answer)[:500])}">{img}'
            f'<div style="opacity: 0.7;">{html.escape(_where(s))}</div>'
            f"<div>expected <b>{html.escape(str(s.expected))}</b></div>"
            f'<div style="white-space: nowrap; overflow: hidden; text-overflow: ellipsis;">'
            f'<span style="color: rgb(200,40,40);">✗</span> answered <b>{html.escape(str(answer)[:200])}</b>'
            "</div></div>")


def _confusion_img(evaluation: Evaluation) -> str:
    if not evaluation.n:
        return ""
    png = base64.b64encode(figure_png(evaluation.plot())).decode("ascii")
    alt = f"confusion matrix of {evaluation.n} rows"
    return f'<img alt="{html.escape(alt)}" style="max-width: 100%;" src="data:image/png;base64,{png}"/>'


def evaluation_html(evaluation: Evaluation) -> str:
    """The notebook view (see the module docstring)."""
    title = f"{html.escape(evaluation.name)} · " if evaluation.name else ""
    head = (f'<div style="font-size: 1.15em; font-weight: 600;">{title}{html.escape(evaluation.headline())}</div>'
            f'<div style="{_MUTED}">{html.escape(evaluation.describe())} · {html.escape(evaluation.run_line())}</div>')
    table = _html_table(CLASS_HEADERS, class_table_rows(evaluation)) if evaluation.classes else ""
    middle = (f'<div style="display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; margin: 0.5em 0;">'
              f"<div>{table}</div><div>{_confusion_img(evaluation)}</div></div>")
    wrong = evaluation.mistake_items
    gallery = ""
    if wrong:
        tiles = "".join(_mistake_tile(s) for s in wrong[:MISTAKE_TILES])
        more = (f'<div style="{_MUTED}">{len(wrong) - MISTAKE_TILES} more: see .mistakes</div>'
                if len(wrong) > MISTAKE_TILES else "")
        gallery = (f'<div style="font-weight: 600; margin-top: 0.4em;">Mistakes ({len(wrong)})</div>'
                   f'<div style="{_GRID}">{tiles}</div>{more}')
    failed = evaluation.failures
    failures = ""
    if failed:
        lines = "".join(f"<li>{html.escape(_where(s))}: {html.escape(str(s.error))}</li>"
                        for s in failed[:FAILURES_SHOWN])
        more = f"<li>… {len(failed) - FAILURES_SHOWN} more</li>" if len(failed) > FAILURES_SHOWN else ""
        failures = (f'<div style="font-weight: 600; margin-top: 0.4em;">Failed, not scored ({len(failed)})</div>'
                    f'<ul style="{_MUTED} margin: 0.2em 0;">{lines}{more}</ul>')
    return f'<div class="azmm-evaluation" style="{_BOX}">{head}{middle}{gallery}{failures}</div>'


def evaluation_plain(evaluation: Evaluation) -> str:
    """The terminal view: headline, run line, per-class table, confusion counts, mistakes and failures."""
    title = f"{_text(evaluation.name)}: " if evaluation.name else ""
    lines = [title + evaluation.headline(), f"{evaluation.describe()} · {evaluation.run_line()}"]
    if evaluation.classes:
        rows = [tuple(_text(c) for c in row) for row in class_table_rows(evaluation)]
        lines += ["", join_lines(rows, CLASS_HEADERS)]
        truth, columns, counts = evaluation.confusion_counts()
        grid = [(_text(t)[:20], *(str(counts.get((t, c), 0)) for c in columns)) for t in truth]
        lines += ["", "confusion (rows: truth, columns: predicted)",
                  join_lines(grid, ("truth", *(_text(c)[:20] for c in columns)))]
    wrong = evaluation.mistake_items
    if wrong:
        lines += ["", f"mistakes ({len(wrong)}):"]
        lines += [f"  {_where(s)} {_text(s.source)[:40]}: expected {_text(s.expected)!s}, answered "
                  f"{_text(s.answer if s.answer is not None else '(no value)')[:80]}" for s in wrong[:PLAIN_MISTAKES]]
        if len(wrong) > PLAIN_MISTAKES:
            lines.append(f"  … {len(wrong) - PLAIN_MISTAKES} more (see .mistakes)")
    failed = evaluation.failures
    if failed:
        lines += ["", f"failed, not scored ({len(failed)}):"]
        lines += [f"  {_where(s)}: {_text(s.error)[:200]}" for s in failed[:FAILURES_SHOWN]]
    return "\n".join(lines)


def evaluation_bundle(evaluation: Evaluation) -> dict[str, str]:
    return {"text/plain": evaluation_plain(evaluation), "text/html": evaluation_html(evaluation)}


def _table_rows(table: EvaluationTable) -> list[tuple[str, ...]]:
    return [tuple(_text(v) for v in row) for row in table.rows()]


def table_plain(table: EvaluationTable) -> str:
    """The side-by-side table and McNemar's test of each variant against the first, as text."""
    lines = [join_lines(_table_rows(table), table.HEADERS)]
    lines += [_text(t.sentence()) for t in table.tests()]
    return "\n".join(lines)


def table_html(table: EvaluationTable) -> str:
    what = f"{html.escape(table[0].describe())} · " if len(table) else ""
    notes = "".join(f'<div style="margin-top: 0.3em;">{html.escape(t.sentence())}</div>' for t in table.tests())
    caption = (f'<div style="{_MUTED}">{what}costs are estimates from the price table, as if every answer was paid '
               "for; latency is of the answers sent (not from the cache)</div>")
    return (f'<div class="azmm-evaluations" style="{_BOX}">{_html_table(table.HEADERS, _table_rows(table))}'
            f"{caption}{notes}</div>")


def table_bundle(table: EvaluationTable) -> dict[str, str]:
    return {"text/plain": table_plain(table), "text/html": table_html(table)}


__all__ = ["class_table_rows", "evaluation_bundle", "evaluation_html", "evaluation_plain", "table_bundle",
           "table_html", "table_plain"]
