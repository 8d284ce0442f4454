"""Interactive batch: one prompt over many images, one request per image, concurrently and resumably.

``VisionClient.batch(prompt, images)`` / ``abatch`` (and ``%%azure_vision -i "photos/**/*.jpg" --each``) land here.
One job per module:

- :mod:`.result` — :class:`BatchResult` (every outcome in input order), :class:`BatchStats`,
  :class:`BatchInterrupted`;
- :mod:`.plan` — :class:`BatchItem` per request, :func:`plan_batch` (checks before anything is sent),
  :func:`estimate_batch` (``--dry-run``), and :class:`BatchClient`: what a batch takes of its caller (the
  settings, the pipeline and a request builder; a ``VisionClient`` is one, and is never imported here);
- :mod:`.preparation` — where images are prepared (event loop, threads, worker processes) and how light a
  finished answer is kept;
- :mod:`.runner` — the async engine (:func:`run_plan`, :func:`abatch`);
- :mod:`.bridge` — :func:`run_batch`: the event loop in a worker thread, Ctrl-C.

How it behaves:

- **Lazy and bounded.** Globs and lists are expanded to a list of sources first (cheap: paths, not pixels); each
  image is read, decoded and prepared only when its turn comes. At most the concurrency window (up to
  ``concurrency``) plus twice the preparing workers are alive at once (being prepared, waiting, or in flight),
  and a finished item keeps at most a small thumbnail (made only when a gallery shows it, or for an image that is
  not a file), so memory and work do not grow with what is not shown.
- **Concurrent at the quota.** Requests go out on the SDK's async client inside a
  :class:`~azmm_magic.service.throttle.Throttle`: at most ``concurrency`` at a time, slow start, paced from the
  budget the service's rate-limit headers announce (from the first send when an earlier answer of the deployment
  announced it: :mod:`azmm_magic.service.limits`). Failures are retried by THE retry policy
  (:mod:`azmm_magic.service.retry`, the same as for a single call); a 429 there has its own budget
  (:data:`~.runner.MAX_THROTTLED_ATTEMPTS`) and pauses every sender for the wait the service asked for (at most
  120 s), halving the window once per pause.
- **Every outcome kept.** A failed item becomes a :class:`BatchFailure` (our one-line message) and never stops the
  others. Answers go into the answer cache as they arrive, so an interrupted run keeps what finished, and a
  re-run sends only what is missing.
"""

from azmm_magic.features.batch.bridge import STOP_WAIT, run_batch
from azmm_magic.features.batch.plan import (
    BatchClient,
    BatchEstimate,
    BatchItem,
    Plan,
    batch_items,
    estimate_batch,
    leaves_and_labels,
    new_run,
    plan_batch,
)
from azmm_magic.features.batch.preparation import is_big_item, preparation_pools
from azmm_magic.features.batch.result import BatchInterrupted, BatchResult, BatchStats
from azmm_magic.features.batch.runner import INITIAL_WINDOW, MAX_THROTTLED_ATTEMPTS, abatch, run_plan
from azmm_magic.features.outcomes import BatchFailure, Outcome, item_source, item_status

__all__ = [
    "INITIAL_WINDOW",
    "MAX_THROTTLED_ATTEMPTS",
    "STOP_WAIT",
    "BatchClient",
    "BatchEstimate",
    "BatchFailure",
    "BatchInterrupted",
    "BatchItem",
    "BatchResult",
    "BatchStats",
    "Outcome",
    "Plan",
    "abatch",
    "batch_items",
    "estimate_batch",
    "is_big_item",
    "item_source",
    "item_status",
    "leaves_and_labels",
    "new_run",
    "plan_batch",
    "preparation_pools",
    "run_batch",
    "run_plan",
]
