"""What ``%azure_vision usage`` shows: the ledger as a table, and with ``--plot`` its chart as a PNG."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from azmm_magic.display.bundle import table_bundle

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.store.ledger import UsageLedger, UsageView

TITLE = "azmm_magic usage this session"
#: said when the ledger has no prices; a frontend words its own (the magic names its %config trait)
NO_PRICES_HINT = " (no prices given: UsageLedger(prices=...) adds cost estimates)"


def usage_table(ledger: UsageLedger, *, hint: str | None = None) -> dict[str, str]:
    """The ledger's rows (per deployment, and a total) as an HTML and plain-text table; ``hint`` replaces
    :data:`NO_PRICES_HINT` in the title when the ledger has no prices."""
    from azmm_magic.store.ledger import currency_of

    unit = currency_of(ledger.prices)
    title = (TITLE + (f" (est. cost in {unit})" if unit else "")) if ledger.prices else (
        TITLE + (NO_PRICES_HINT if hint is None else hint))
    return table_bundle(ledger.rows(), ledger.HEADERS, title=title)


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def usage_bundle(view: UsageView) -> dict[str, Any]:
    """The table; with a chart, the PNG as ``image/png`` and inside the HTML too (frontends show one mimetype)."""
    bundle: dict[str, Any] = usage_table(view.ledger, hint=view.hint)
    if view.figure is not None:
        png = base64.b64encode(figure_png(view.figure)).decode("ascii")
        bundle["image/png"] = png
        bundle["text/html"] += f'<br/><img alt="usage chart" src="data:image/png;base64,{png}"/>'
    return bundle


__all__ = ["figure_png", "usage_bundle", "usage_table"]
