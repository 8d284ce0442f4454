"""What ``--dry-run`` shows: the images, the request body (data URLs shortened) and the token/cost estimate."""

from __future__ import annotations

import html
import json
from typing import Any

from azmm_magic.display.bundle import BOX_STYLE, CODE_STYLE
from azmm_magic.display.result import footer_html
from azmm_magic.display.thumbnails import thumbnails_html
from azmm_magic.store.ledger import cost, currency_of


def cost_text(prices: Any, deployment: str, input_tokens: int, output_tokens: int) -> str:
    """`` Estimated cost: input ≈ 0.0019 USD + output ≤ 0.0100 USD (at most 0.0119 USD).`` ("" without a price):
    the input and the output ceiling apart, in the price table's currency (named when it has a ``currency``)."""
    pin = cost(prices, deployment, input_tokens, 0)
    pout = cost(prices, deployment, 0, output_tokens)
    if pin is None or pout is None:
        return ""
    unit = currency_of(prices)
    unit = f" {unit}" if unit else ""
    where = "" if unit else " in your price table's currency"
    return (f" Estimated cost{where}: input ≈ {pin:.4f}{unit} + output ≤ {pout:.4f}{unit} "
            f"(at most {pin + pout:.4f}{unit}).")


class RequestPreview:
    """What ``--dry-run`` shows: the images, the request body (data URLs shortened) and the token estimate.

    Nothing is sent. ``body`` is the request as a dict; ``estimated_prompt_tokens`` the input estimate;
    ``estimated_cost`` (with a price table) the cost of that input plus the whole output-token limit (a ceiling).
    """

    def __init__(self, request: Any, settings: Any, prices: Any = None) -> None:
        self.request = request
        self.settings = settings
        self.body = request.preview()
        self.estimated_prompt_tokens = request.estimate_prompt_tokens(settings.token_rule)
        self.estimated_cost = cost(prices, request.deployment, self.estimated_prompt_tokens, request.max_tokens)
        self.cost_text = cost_text(prices, request.deployment, self.estimated_prompt_tokens, request.max_tokens)

    def summary(self) -> str:
        r, s = self.request, self.settings
        per_image = ", ".join(str(i.estimate_tokens(r.detail, s.token_rule)) for i in r.images) or "none"
        return (
            f"DRY RUN — nothing sent. {r.deployment} at {s.endpoint_host or '(no endpoint set)'} "
            f"({s.resolved_api_style}): ≈ {self.estimated_prompt_tokens:,} input tokens "
            f"(image tokens: {per_image}; detail={r.detail}, rule={s.token_rule}), up to {r.max_tokens:,} output tokens."
        ) + self.cost_text

    def _json(self) -> str:
        return json.dumps(self.body, indent=2, ensure_ascii=False)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        summary = self.summary()
        return {
            "text/plain": f"{summary}\n{self._json()}",
            "text/html": (
                f'<div style="{BOX_STYLE}">{thumbnails_html(self.request.images)}{footer_html(summary)}'
                f'<pre class="azmm-request" style="{CODE_STYLE} max-height: 80vh; overflow: auto;">'
                f"{html.escape(self._json())}</pre></div>"
            ),
        }

    def __repr__(self) -> str:
        return self.summary()


class BatchPreview:
    """What ``--each --dry-run`` shows: the whole batch's estimate (images, input tokens, output ceiling, cost
    ceiling with a price table), then the first item's request as :class:`RequestPreview` shows it."""

    def __init__(self, estimate: Any, settings: Any, prices: Any = None) -> None:
        self.estimate = estimate
        self.first = RequestPreview(estimate.first, settings, prices)
        deployment = estimate.first.deployment
        self.estimated_cost = cost(prices, deployment, estimate.input_tokens, estimate.output_ceiling)
        self.cost_text = cost_text(prices, deployment, estimate.input_tokens, estimate.output_ceiling)

    def summary(self) -> str:
        e = self.estimate
        unknown = f" ({e.unknown} image(s) of unknown size not counted)" if e.unknown else ""
        price = self.cost_text
        return (
            f"DRY RUN — nothing sent. --each: {e.count:,} image(s), one request each: ≈ {e.input_tokens:,} input "
            f"tokens in all{unknown}, at most {e.output_ceiling:,} output tokens.{price} The first request:"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        first = self.first._repr_mimebundle_()
        summary = self.summary()
        return {
            "text/plain": f"{summary}\n{first['text/plain']}",
            "text/html": f"{footer_html(summary)}{first['text/html']}",
        }

    def __repr__(self) -> str:
        return self.summary()


__all__ = ["BatchPreview", "RequestPreview", "cost_text"]
