"""Score a batch against labels: accuracy with its confidence interval, a confusion matrix, per-class precision and
recall, the mistakes, failures apart, and what the run cost; and compare deployments or prompts on the same rows.

``batch.evaluate("label")`` (a :class:`~azmm_magic.features.batch.BatchResult` over DataFrame rows),
``client.evaluate([...], df, truth="label")`` and ``%%azure_vision -i df --each --expect label`` land here.

- **Matching** (``match=``): ``"exact"`` (the default) compares after normalising case, spacing and punctuation;
  ``"contains"`` accepts an answer that contains the label (as whole words); ``"number"`` compares the first
  number of the answer within ``tolerance``; a callable ``match(answer, truth) -> bool`` decides itself.
- **What is compared**: the answer text, or with ``field=`` a field of a structured answer (``--schema`` /
  ``--json`` / ``response_format=``; dotted for nested fields). Without ``field``, a structured answer that has a
  field named like the truth column (or only one field) is compared by that field.
- **Honest numbers**: failures (no answer) and rows without a label are counted apart, never as wrong answers;
  accuracy comes with a 95 % Wilson interval and the sample size; two evaluations of the same rows are compared
  with McNemar's exact test on the paired answers. All computed here with :mod:`math` (no scipy).
- **Cost and time** from the usage that the answers carry, priced with the ledger's price table: the cost of this
  run (cache hits are free), the cost per 1,000 images and per correct answer (as if every answer was paid for),
  the batch's wall time and the median latency of the answers that were sent.

Parts: :mod:`.stats`, :mod:`.matching`, :mod:`.scores` (the :class:`Evaluation`), :mod:`.build` (scoring a batch)
and :mod:`.variants` (side by side). Nothing here needs pandas except the DataFrame views (``confusion``,
``per_class``, ``mistakes``, ``to_dataframe()``), which say so in one line when it is missing.
"""

from __future__ import annotations

from azmm_magic.features.evaluation.build import evaluate_batch
from azmm_magic.features.evaluation.matching import MATCHES, field_value, first_number, matcher, normalise
from azmm_magic.features.evaluation.scores import Evaluation, Scored
from azmm_magic.features.evaluation.stats import mcnemar_p, wilson
from azmm_magic.features.evaluation.variants import EvaluationTable, Paired, evaluate_variants, paired

__all__ = ["Evaluation", "EvaluationTable", "MATCHES", "Paired", "Scored", "evaluate_batch", "evaluate_variants",
           "field_value", "first_number", "matcher", "mcnemar_p", "normalise", "paired", "wilson"]
