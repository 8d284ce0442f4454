"""display layer of azmm_magic: every mimebundle (results, live streams, dry-run previews, galleries, compare
grids, evaluations, usage, jobs), one module per job.

The classes of the lower layers render through :mod:`azmm_magic.core.views`; importing this package registers
their renderers (:func:`install`). Classes are named by dotted path, so registering imports none of them.
"""

from __future__ import annotations

from azmm_magic.core import views
from azmm_magic.display import compare, evaluation, gallery, jobs, result, usage

RENDERERS = (
    ("azmm_magic.core.result.VisionResult", views.MIMEBUNDLE, result.result_bundle),
    ("azmm_magic.core.result.VisionResult", views.PLAIN, result.result_plain),
    ("azmm_magic.core.result.VisionResult", "footer", result.footer_text),
    ("azmm_magic.features.batch.result.BatchResult", views.MIMEBUNDLE, gallery.batch_bundle),
    ("azmm_magic.features.batch.result.BatchResult", views.PLAIN, gallery.batch_plain),
    ("azmm_magic.features.compare.Comparison", views.MIMEBUNDLE, compare.comparison_bundle),
    ("azmm_magic.features.compare.Comparison", views.PLAIN, compare.comparison_plain),
    ("azmm_magic.features.evaluation.scores.Evaluation", views.MIMEBUNDLE, evaluation.evaluation_bundle),
    ("azmm_magic.features.evaluation.scores.Evaluation", views.PLAIN, evaluation.evaluation_plain),
    ("azmm_magic.features.evaluation.variants.EvaluationTable", views.MIMEBUNDLE, evaluation.table_bundle),
    ("azmm_magic.features.evaluation.variants.EvaluationTable", views.PLAIN, evaluation.table_plain),
    ("azmm_magic.features.batch_api.handle.BatchJob", views.MIMEBUNDLE, jobs.job_bundle),
    ("azmm_magic.features.batch_api.handle.JobList", views.MIMEBUNDLE, jobs.job_list_bundle),
    ("azmm_magic.store.ledger.UsageLedger", views.MIMEBUNDLE, usage.usage_table),
    ("azmm_magic.store.ledger.UsageView", views.MIMEBUNDLE, usage.usage_bundle),
)


def install() -> None:
    """Register the renderers of the lower layers' classes with :mod:`azmm_magic.core.views` (idempotent)."""
    for kind, view, renderer in RENDERERS:
        views.register(kind, renderer, view=view)


install()

__all__ = ["RENDERERS", "install"]
