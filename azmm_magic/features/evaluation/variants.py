"""Several evaluations of the same rows side by side (deployments, prompts, detail levels): an
:class:`EvaluationTable`, with McNemar's exact test of each against the first."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views
from azmm_magic.core.errors import ConfigError
from azmm_magic.features.evaluation.matching import Matcher
from azmm_magic.features.evaluation.scores import Evaluation, pandas_module
from azmm_magic.features.evaluation.stats import mcnemar_p

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch import BatchResult


@dataclass(frozen=True)
class Paired:
    """McNemar's test of two evaluations on the rows both answered: ``only_first`` right only in the first,
    ``only_second`` right only in the second, ``pairs`` rows compared, ``p`` the two-sided exact p-value."""

    first: str
    second: str
    pairs: int
    only_first: int
    only_second: int
    p: float

    def sentence(self) -> str:
        """The test in one sentence, with what it means."""
        if not self.pairs:
            return f"{self.first} vs {self.second}: no row answered by both, nothing to compare."
        verdict = ("is more than chance (p < 0.05)" if self.p < 0.05
                   else "could be chance (p ≥ 0.05; more rows would tell)")
        return (f"{self.first} vs {self.second}: on {self.pairs} rows both answered, {self.only_first} right only "
                f"with {self.first}, {self.only_second} right only with {self.second}; McNemar exact p = "
                f"{self.p:.3g}: the difference {verdict}.")


def paired(a: Evaluation, b: Evaluation) -> Paired:
    """McNemar's exact test on the rows both evaluations scored (matched by input position)."""
    right_a = {s.index: bool(s.correct) for s in a.scored}
    right_b = {s.index: bool(s.correct) for s in b.scored}
    both = sorted(set(right_a) & set(right_b))
    only_a = sum(1 for i in both if right_a[i] and not right_b[i])
    only_b = sum(1 for i in both if right_b[i] and not right_a[i])
    return Paired(a.name or "first", b.name or "second", len(both), only_a, only_b, mcnemar_p(only_a, only_b))


class EvaluationTable(list[Evaluation]):
    """Several evaluations of the same rows (deployments, prompts, detail levels) side by side: accuracy with its
    interval, cost per 1,000 images and per correct answer, median latency, failures; and McNemar's test of each
    against the first (:meth:`tests`). ``evaluation["name"]`` picks one by name; ``to_dataframe()`` the table."""

    HEADERS = ("variant", "accuracy", "95 % CI", "n", "failed", "cost / 1,000 images", "cost / correct",
               "tokens / image", "median latency", "cached")

    def __init__(self, evaluations: Iterable[Evaluation] = ()) -> None:
        super().__init__(evaluations)

    def by_name(self, name: str) -> Evaluation:
        """The evaluation called ``name``."""
        for evaluation in self:
            if evaluation.name == name:
                return evaluation
        raise KeyError(name)

    def tests(self) -> list[Paired]:
        """McNemar's test of every evaluation against the first."""
        return [paired(self[0], other) for other in self[1:]] if len(self) > 1 else []

    def rows(self) -> list[tuple[str, ...]]:
        """The table as strings (one row per evaluation)."""

        def money(value: float | None, digits: int) -> str:
            return "—" if value is None else f"{value:.{digits}f}"

        out: list[tuple[str, ...]] = []
        for e in self:
            low, high = e.interval
            accuracy = "—" if not e.n else f"{100 * e.accuracy:.1f} % ({e.correct}/{e.n})"
            latency = e.median_latency
            out.append((e.name, accuracy, "—" if not e.n else f"{100 * low:.0f}–{100 * high:.0f} %", str(e.n),
                        str(len(e.failures)), money(e.cost_per_1000, 2), money(e.cost_per_correct, 4),
                        "—" if e.tokens_per_image is None else f"{e.tokens_per_image:,.0f}",
                        "— (cached)" if latency is None else f"{latency:.2f} s", str(e.cached)))
        return out

    def to_dataframe(self) -> Any:
        """The table as a DataFrame (numbers, not strings), one row per evaluation."""
        pd = pandas_module("EvaluationTable.to_dataframe()")
        return pd.DataFrame.from_records([{
            "variant": e.name, "accuracy": e.accuracy, "ci_low": e.interval[0], "ci_high": e.interval[1], "n": e.n,
            "correct": e.correct, "failed": len(e.failures), "cost_per_1000": e.cost_per_1000,
            "cost_per_correct": e.cost_per_correct, "tokens_per_image": e.tokens_per_image,
            "median_latency": e.median_latency, "cached": e.cached, "cost": e.cost,
        } for e in self]).set_index("variant")

    def __repr__(self) -> str:
        return views.plain(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)


def _variant_name(variant: Mapping[str, Any], number: int, differing: Sequence[str]) -> str:
    if variant.get("name"):
        return str(variant["name"])
    parts = []
    for key in differing:
        value = variant.get(key)
        if key == "prompt" and value is not None:
            parts.append(f"prompt {number}")
        elif key == "response_format" and value is not None:
            parts.append(getattr(value, "__name__", "schema"))
        elif value is not None:
            parts.append(str(value) if key == "deployment" else f"{key}={value}")
    return ", ".join(parts) or f"variant {number}"


def evaluate_variants(run: Callable[..., BatchResult], variants: Sequence[str | Mapping[str, Any]], images: Any, *,
                      truth: Any, prompt: str | None = None, field: str | None = None,
                      match: str | Matcher | None = None, tolerance: float = 0.0,
                      prices: Mapping[str, Any] | None = None, **options: Any) -> EvaluationTable:
    """Run ``run(prompt, images, **options)`` (a batch) once per variant and score each against ``truth``.

    A variant is a prompt (a string) or a dict of what differs: ``prompt``, ``deployment``, ``detail``,
    ``system``, ``response_format``, ``field``, ``name``... over the shared ``options``."""
    if isinstance(variants, str | Mapping) or not variants:
        raise ConfigError("evaluate() takes a list of variants: prompts, or dicts such as "
                          "{'deployment': 'gpt-4o-mini'}; e.g. client.evaluate(['Name the colour.'], df, truth='label').")
    specs: list[dict[str, Any]] = [{"prompt": v} if isinstance(v, str) else dict(v) for v in variants]
    for spec in specs:
        if not isinstance(spec.get("prompt", prompt), str) or not spec.get("prompt", prompt):
            raise ConfigError("evaluate(): every variant needs a prompt: give prompt='...' or a 'prompt' in the variant.")
    keys = sorted({k for spec in specs for k in spec if k != "name"})
    differing = [k for k in keys if len({repr(spec.get(k, options.get(k))) for spec in specs}) > 1]
    table = EvaluationTable()
    names: set[str] = set()
    for number, spec in enumerate(specs, start=1):
        name = _variant_name(spec, number, differing)
        if name in names:
            name = f"{name} ({number})"
        names.add(name)
        chosen = {**options, **{k: v for k, v in spec.items() if k not in ("name", "prompt", "field", "match")}}
        batch = run(spec.get("prompt", prompt), images, **chosen)
        table.append(batch.evaluate(truth, field=spec.get("field", field), match=spec.get("match", match),
                                    tolerance=tolerance, prices=prices, name=name))
    return table


__all__ = ["EvaluationTable", "Paired", "evaluate_variants", "paired"]
