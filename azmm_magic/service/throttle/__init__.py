"""Throttling a batch's sends, as small parts: a :class:`~.window.ConcurrencyWindow` (how many in flight), a
:class:`~.pacer.BudgetPacer` (the service's announced budget), a :class:`~.bucket.TokenBucket` (the ``tpm``
setting), and :class:`~.throttle.Throttle`, which puts them together for one event loop."""

from azmm_magic.service.throttle.bucket import TokenBucket
from azmm_magic.service.throttle.pacer import BudgetPacer, BudgetWait
from azmm_magic.service.throttle.throttle import Throttle
from azmm_magic.service.throttle.window import ConcurrencyWindow

__all__ = ["BudgetPacer", "BudgetWait", "ConcurrencyWindow", "Throttle", "TokenBucket"]
