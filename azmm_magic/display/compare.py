"""How a :class:`~azmm_magic.features.compare.Comparison` looks: one column per deployment, side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from azmm_magic.display.bundle import ERROR_BORDER
from azmm_magic.display.result import footer_html, footer_text
from azmm_magic.display.thumbnails import thumbnails_html
from azmm_magic.display.untrusted import html_label, html_text, label, markdown_html, terminal

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.compare import Comparison

_COLUMN = "border:1px solid rgba(128,128,128,0.35); border-radius:6px; padding:8px; min-width:0; overflow:auto"


def _column(comparison: Comparison, deployment: str) -> str:
    head = f"<div style='font-weight:600; margin-bottom:0.4em'>{html_label(deployment)}</div>"
    if deployment in comparison:
        result = comparison[deployment]
        body = markdown_html(result.text)
        foot = footer_text(result)
    else:
        body = (f"<div style='border-left:3px solid {ERROR_BORDER}; padding:4px 8px'>"
                f"{html_text(str(comparison.errors[deployment]))}</div>")
        foot = "failed"
    return f"<div style='{_COLUMN}'>{head}{body}{footer_html(foot)}</div>"


def comparison_html(comparison: Comparison) -> str:
    """The images once, then a grid with a column per deployment (answer or error, then its footer)."""
    thumbs = thumbnails_html(comparison.request.images) if comparison.request is not None else ""
    cols = "".join(_column(comparison, d) for d in comparison.order)
    return (f"<div class='azmm-compare'>{thumbs}<div style='display:grid; gap:10px; "
            f"grid-template-columns: repeat({len(comparison.order)}, minmax(0, 1fr));'>{cols}</div></div>")


def comparison_plain(comparison: Comparison) -> str:
    blocks = []
    for d in comparison.order:
        if d in comparison:
            blocks.append(f"=== {label(d)} ===\n{terminal(comparison[d].text)}\n— {footer_text(comparison[d])}")
        else:
            blocks.append(f"=== {label(d)} ===\nFAILED: {label(str(comparison.errors[d]))}")
    return "\n\n".join(blocks)


def comparison_bundle(comparison: Comparison) -> dict[str, str]:
    return {"text/plain": comparison_plain(comparison), "text/html": comparison_html(comparison)}


__all__ = ["comparison_bundle", "comparison_html", "comparison_plain"]
