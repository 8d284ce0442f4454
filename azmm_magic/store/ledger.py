"""The usage ledger: every call (answered by the service or from the cache) counted per deployment.

Per deployment: calls, requests actually sent, cache hits, input and output tokens billed (tokens of cache hits
are counted apart, as tokens saved), and seconds. An optional price table (per deployment, in your currency per
1M input / output tokens; key ``"*"`` for any other deployment) turns billed tokens into an estimated cost.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views
from azmm_magic.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.result import VisionResult

Prices = Mapping[str, Any]


#: Batch API request ids a ledger remembers having counted (so that fetching a job's results again does not count
#: them twice); the oldest are forgotten first
MAX_SEEN_IDS = 100_000


@dataclass
class DeploymentUsage:
    """Counters of one deployment."""

    calls: int = 0
    requests: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    seconds: float = 0.0
    unreported: int = 0  # requests whose answer carried no usage (the server reported none)


def price_of(prices: Prices | None, deployment: str) -> tuple[float, float] | None:
    """(input, output) price per 1M tokens of ``deployment`` from a price table, or None when it has none.

    A table maps a deployment (or ``"*"``) to ``(input, output)``, ``[input, output]`` or
    ``{"input": x, "output": y}``; an optional ``"currency"`` entry names its currency (:func:`currency_of`).
    """
    if not prices:
        return None
    entry = prices.get(deployment, prices.get("*"))
    if entry is None:
        return None
    try:
        if isinstance(entry, Mapping):
            return float(entry["input"]), float(entry["output"])
        pin, pout = entry
        return float(pin), float(pout)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"The price of {deployment!r} must be (input, output) per 1M tokens or {{'input': x, 'output': y}}; "
            f"got {entry!r}."
        ) from None


def currency_of(prices: Prices | None) -> str:
    """The currency a price table names with its ``"currency"`` entry (``{"*": (2.5, 10.0), "currency": "USD"}``),
    or "" when it names none."""
    value = prices.get("currency") if prices else None
    return value.strip()[:12] if isinstance(value, str) else ""


def cost(prices: Prices | None, deployment: str, input_tokens: int, output_tokens: int) -> float | None:
    """Estimated cost of the tokens, or None without a price for ``deployment``."""
    price = price_of(prices, deployment)
    if price is None:
        return None
    return input_tokens / 1e6 * price[0] + output_tokens / 1e6 * price[1]


class UsageLedger:
    """Counts every call per deployment. Thread-safe. ``prices`` as in :func:`price_of`.

    >>> ledger = UsageLedger(prices={"gpt-4o": (2.5, 10.0)})
    >>> ledger.record(result)          # doctest: +SKIP   (VisionClient does this for every call)
    >>> ledger.totals().input_tokens   # doctest: +SKIP
    """

    def __init__(self, prices: Prices | None = None) -> None:
        self.prices: Prices | None = prices
        self._lock = threading.Lock()
        self._by: dict[str, DeploymentUsage] = {}
        self._seen: dict[str, None] = {}  # request ids counted once (Batch API lines), the newest MAX_SEEN_IDS

    def record(self, result: VisionResult, *, once: str | None = None) -> None:
        """Count one call: a sent request (tokens billed) or a cache hit (tokens saved). With ``once`` (e.g. a
        Batch API line's request id), a result already counted under that id is not counted again."""
        u = result.usage
        with self._lock:
            if once is not None:
                if once in self._seen:
                    return
                self._seen[once] = None
                if len(self._seen) > MAX_SEEN_IDS:
                    del self._seen[next(iter(self._seen))]
            row = self._by.setdefault(result.deployment or "?", DeploymentUsage())
            row.calls += 1
            row.seconds += result.elapsed
            if result.cached:
                row.cache_hits += 1
                row.saved_input_tokens += u.prompt_tokens
                row.saved_output_tokens += u.completion_tokens
            else:
                row.requests += 1
                row.input_tokens += u.prompt_tokens
                row.output_tokens += u.completion_tokens
                row.unreported += 0 if u.reported else 1

    def by_deployment(self) -> dict[str, DeploymentUsage]:
        """A copy of the counters, per deployment (sorted by name)."""
        with self._lock:
            return {name: DeploymentUsage(**vars(row)) for name, row in sorted(self._by.items())}

    def totals(self) -> DeploymentUsage:
        total = DeploymentUsage()
        for row in self.by_deployment().values():
            for name, value in vars(row).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def cost(self, deployment: str | None = None) -> float | None:
        """Estimated cost of billed tokens (one deployment, or all that have a price); None without prices."""
        rows = self.by_deployment()
        names = [deployment] if deployment is not None else list(rows)
        costs = [cost(self.prices, n, rows[n].input_tokens, rows[n].output_tokens) for n in names if n in rows]
        known = [c for c in costs if c is not None]
        return sum(known) if known else None

    def reset(self) -> None:
        with self._lock:
            self._by.clear()
            self._seen.clear()

    def rows(self) -> list[tuple[str, ...]]:
        """Table rows: deployment, calls, sent, cache hits, input, output, saved tokens, seconds, est. cost."""

        def fmt_cost(value: float | None) -> str:
            return "—" if value is None else f"{value:.4f}"

        def fmt_tokens(value: int, r: DeploymentUsage) -> str:
            """Billed tokens; what the server left out is said, never shown as 0."""
            if not r.unreported:
                return f"{value:,}"
            if r.unreported == r.requests:
                return "usage not reported by the server"
            return f"{value:,} (+{r.unreported} sent without usage: not reported by the server)"

        out: list[tuple[str, ...]] = []
        rows = list(self.by_deployment().items())
        if len(rows) > 1:
            rows.append(("total", self.totals()))
        for name, r in rows:
            c = self.cost() if name == "total" else cost(self.prices, name, r.input_tokens, r.output_tokens)
            out.append((name, str(r.calls), str(r.requests), str(r.cache_hits), fmt_tokens(r.input_tokens, r),
                        fmt_tokens(r.output_tokens, r), f"{r.saved_input_tokens + r.saved_output_tokens:,}",
                        f"{r.seconds:.2f}", fmt_cost(c)))
        return out

    HEADERS = ("deployment", "calls", "sent", "cache hits", "input tokens", "output tokens", "tokens saved",
               "seconds", "est. cost")

    def table(self) -> dict[str, Any]:
        """The table as a mimebundle (HTML and plain text), drawn by the display layer."""
        return views.mimebundle(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def plot(self) -> Any:
        """A matplotlib Figure: billed input/output tokens and cache hits per deployment (no pyplot state)."""
        from matplotlib.figure import Figure

        rows = self.by_deployment()
        names = list(rows) or ["(no calls yet)"]
        fig = Figure(figsize=(max(4.0, 1.4 * len(names) + 2), 3.2), layout="constrained")
        ax = fig.add_subplot()
        xs = range(len(names))
        inputs = [rows[n].input_tokens if n in rows else 0 for n in names]
        outputs = [rows[n].output_tokens if n in rows else 0 for n in names]
        ax.bar([x - 0.2 for x in xs], inputs, width=0.4, label="input tokens")
        ax.bar([x + 0.2 for x in xs], outputs, width=0.4, label="output tokens")
        ax.set_xticks(list(xs), names)
        ax.set_ylabel("tokens billed")
        hits = [rows[n].cache_hits if n in rows else 0 for n in names]
        for x, n, h in zip(xs, names, hits, strict=False):
            sent = rows[n].requests if n in rows else 0
            ax.annotate(f"{sent} sent · {h} cached", (x, 0), xytext=(0, -28), textcoords="offset points",
                        ha="center", fontsize=8)
        ax.legend(fontsize=8)
        ax.set_title("Usage per deployment")
        return fig

    def __repr__(self) -> str:
        return views.plain(self)


class UsageView:
    """What ``%azure_vision usage`` shows: the table, and with ``plot=True`` the chart as a PNG below it.
    ``hint``: what the title says when the ledger has no prices (a frontend's wording of how to give them)."""

    def __init__(self, ledger: UsageLedger, *, plot: bool = False, hint: str | None = None) -> None:
        self.ledger = ledger
        self.figure = ledger.plot() if plot else None
        self.hint = hint

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        return views.plain(self)


__all__ = ["MAX_SEEN_IDS", "DeploymentUsage", "UsageLedger", "UsageView", "cost", "price_of"]
