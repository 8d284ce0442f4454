"""Compare deployments: the same request to several deployments, answers side by side.

``%%azure_vision --deployment a,b`` or :func:`compare`. The images are prepared once; the requests are sent
concurrently (Ctrl-C cancels those in flight); a deployment that fails shows its error in its column and never
loses the others' answers. The result is a :class:`Comparison`, a dict ``{deployment: VisionResult}`` that renders as an HTML grid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views
from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.features.cancel import run_interruptible

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.result import VisionResult
    from azmm_magic.features.client import VisionClient, VisionRequest


class Comparison(dict[str, Any]):
    """``{deployment: VisionResult}`` for the deployments that answered; ``errors`` maps the others to their error.

    Renders (through :mod:`azmm_magic.core.views`) as a grid: one column per deployment with its answer, tokens
    and time.
    """

    def __init__(self, results: dict[str, VisionResult], errors: dict[str, AzureVisionError],
                 order: Sequence[str], request: VisionRequest | None = None) -> None:
        super().__init__((d, results[d]) for d in order if d in results)
        self.errors = {d: errors[d] for d in order if d in errors}
        self.order = tuple(order)
        self.request = request

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        return views.plain(self)


def compare(
    client: VisionClient,
    prompt: str,
    images: Iterable[object] | object = (),
    *,
    deployments: Sequence[str],
    use_cache: bool = True,
    refresh: bool = False,
    **options: Any,
) -> Comparison:
    """Ask ``deployments`` the same question about the same images (sent concurrently, each cached on its own).

    Raises the error when every deployment failed; otherwise failures are in ``Comparison.errors``.
    """
    names = list(dict.fromkeys(d for d in deployments if d))
    if len(names) < 2:
        raise ConfigError("Comparing needs at least two deployment names, e.g. deployments=['gpt-4o', 'gpt-4o-mini'].",
                          settings=("deployment",))
    options.pop("deployment", None)
    base = client.prepare(prompt, images, deployment=names[0], **options)
    return compare_request(client, base, names, use_cache=use_cache, refresh=refresh)


def compare_request(
    client: VisionClient, base: VisionRequest, deployments: Sequence[str], *, use_cache: bool = True,
    refresh: bool = False
) -> Comparison:
    """:func:`compare` for a prepared request (its ``deployment`` is replaced by each name in turn)."""
    requests = {d: client.retarget(base, d) for d in deployments}
    results: dict[str, VisionResult] = {}
    errors: dict[str, AzureVisionError] = {}

    async def one(d: str) -> None:
        try:
            results[d] = await client.asend(requests[d], use_cache=use_cache, refresh=refresh)
        except AzureVisionError as e:
            errors[d] = e

    async def every() -> None:
        await asyncio.gather(*(one(d) for d in deployments))

    run_interruptible(every, name="azmm-compare")  # Ctrl-C cancels the requests in flight
    if not results:  # nothing to show side by side: the first error, as one clear line
        raise errors[deployments[0]]
    return Comparison(results, errors, deployments, base)


__all__ = ["Comparison", "compare", "compare_request"]
