"""Usage ledger arithmetic, `%azure_vision usage`, cost estimates in --dry-run, and comparing deployments."""

from __future__ import annotations

import base64

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.features.compare import Comparison, compare
from azmm_magic.core.errors import ConfigError
from azmm_magic.store.ledger import UsageLedger, cost, price_of
from azmm_magic.core.result import Usage, VisionResult


def _r(deployment, prompt, completion, elapsed, cached=False):
    return VisionResult(text="t", usage=Usage(prompt, completion, prompt + completion), deployment=deployment,
                        elapsed=elapsed, cached=cached)


def test_ledger_arithmetic():
    ledger = UsageLedger(prices={"a": (2.5, 10.0), "*": {"input": 1, "output": 2}})
    ledger.record(_r("a", 1000, 200, 1.5))
    ledger.record(_r("a", 3000, 800, 0.5))
    ledger.record(_r("a", 1000, 200, 0.001, cached=True))
    ledger.record(_r("b", 500_000, 100_000, 2.0))
    rows = ledger.by_deployment()
    a, b = rows["a"], rows["b"]
    assert (a.calls, a.requests, a.cache_hits, a.input_tokens, a.output_tokens) == (3, 2, 1, 4000, 1000)
    assert (a.saved_input_tokens, a.saved_output_tokens) == (1000, 200)
    assert a.seconds == pytest.approx(2.001)
    assert ledger.cost("a") == pytest.approx(4000 / 1e6 * 2.5 + 1000 / 1e6 * 10.0)  # 0.02
    assert ledger.cost("b") == pytest.approx(0.5 * 1 + 0.1 * 2)  # priced by "*"
    assert ledger.cost() == pytest.approx(0.72)
    total = ledger.totals()
    assert (total.calls, total.requests, total.input_tokens) == (4, 3, 504_000)
    table = ledger.rows()
    assert table[-1][0] == "total" and table[-1][-1] == "0.7200" and table[0][-1] == "0.0200"
    assert UsageLedger().cost() is None and cost(None, "a", 1, 1) is None
    assert price_of({"a": [1, 2]}, "a") == (1.0, 2.0)
    with pytest.raises(ConfigError, match="per 1M tokens"):
        price_of({"a": "cheap"}, "a")


def test_client_counts_sent_and_cached_calls(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    first = client.ask("count me", images=[red_png])
    client.ask("count me", images=[red_png])
    list(client.stream("count me too", images=[red_png]))
    row = client.ledger.by_deployment()["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (3, 2, 1)
    assert row.input_tokens > first.usage.prompt_tokens and row.saved_input_tokens == first.usage.prompt_tokens


def test_usage_magic_table_plot_and_reset(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    shell.run_cell_magic("azure_vision", "-i img --no-stream", "a")
    shell.run_cell_magic("azure_vision", "-i img --no-stream", "a")
    shell.run_cell_magic("azure_vision", "-i img --no-stream --deployment other", "a")
    view = shell.run_line_magic("azure_vision", "usage")
    text = repr(view)
    assert "vision-test" in text and "other" in text and "total" in text and "set %config AzureVision.prices" in text
    magics = shell.magics_manager.registry["AzureVision"]
    row = magics.ledger.by_deployment()["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (2, 1, 1)
    shell.run_line_magic("config", "AzureVision.prices = {'vision-test': (2.5, 10.0)}")
    priced = shell.run_line_magic("azure_vision", "usage --plot")
    bundle = priced._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG") and "data:image/png;base64," in bundle["text/html"]
    expected = row.input_tokens / 1e6 * 2.5 + row.output_tokens / 1e6 * 10.0
    assert f"{expected:.4f}" in bundle["text/plain"]
    shell.run_line_magic("azure_vision", "usage reset")
    assert magics.ledger.by_deployment() == {}
    with pytest.raises(UsageError, match="usage --plot"):
        shell.run_line_magic("azure_vision", "usage --bar")


def test_dry_run_shows_estimated_cost(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    shell.run_line_magic("config", "AzureVision.prices = {'vision-test': (2.5, 10.0)}")
    shell.run_line_magic("config", "AzureVision.max_tokens = 1000")
    preview = shell.run_cell_magic("azure_vision", "-i img --dry-run", "How much?")
    expected = preview.estimated_prompt_tokens / 1e6 * 2.5 + 1000 / 1e6 * 10.0
    assert preview.estimated_cost == pytest.approx(expected)
    pin, pout = preview.estimated_prompt_tokens / 1e6 * 2.5, 1000 / 1e6 * 10.0
    shown = repr(preview)
    assert (f"Estimated cost in your price table's currency: input ≈ {pin:.4f} + output ≤ {pout:.4f} "
            f"(at most {expected:.4f})") in shown and "trait" not in shown
    shell.run_line_magic("config", "AzureVision.prices = {'vision-test': (2.5, 10.0), 'currency': 'USD'}")
    shown = repr(shell.run_cell_magic("azure_vision", "-i img --dry-run", "How much?"))
    assert f"Estimated cost: input ≈ {pin:.4f} USD + output ≤ {pout:.4f} USD (at most {expected:.4f} USD)." in shown
    assert emulator.count() == 0


def test_compare_deployments_side_by_side(shell, keyed_emulator, red_png, monkeypatch):
    from tests.conftest import CANARY_KEY

    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    shell.run_line_magic("config", f"AzureVision.endpoint = '{keyed_emulator.url}'")
    shell.run_line_magic("config", "AzureVision.max_retries = 0")
    shell.user_ns["img"] = str(red_png)
    out = shell.run_cell_magic("azure_vision", "-i img --deployment vision,o4-mini,missing -o cmp", "Which is it?")
    assert isinstance(out, Comparison) and shell.user_ns["cmp"] is out
    assert list(out) == ["vision", "o4-mini"] and set(out.errors) == {"missing"}  # a failure loses nothing
    assert "`vision`" in out["vision"].text and "`o4-mini`" in out["o4-mini"].text
    html = out._repr_mimebundle_()["text/html"]
    assert "grid-template-columns: repeat(3" in html and "was not found" in html and " in / " in html
    paths = sorted(r["path"] for r in keyed_emulator.chat_requests())
    assert len(paths) == 3 and any("/o4-mini/" in p for p in paths)
    with pytest.raises(UsageError, match="drop --chat"):
        shell.run_cell_magic("azure_vision", "-i img --deployment vision,o4-mini --chat", "x")


def test_compare_python_api_all_failing_raises_one_error(emulator, keyed_emulator, red_png):
    from azmm_magic.core.errors import DeploymentNotFoundError
    from tests.conftest import CANARY_KEY

    client = VisionClient(endpoint=emulator.url, deployment="x", auth="none")
    cmp = compare(client, "Same?", [red_png], deployments=["a", "b"])
    assert cmp["a"].deployment == "a" and cmp["b"].deployment == "b" and not cmp.errors
    with pytest.raises(ConfigError, match="at least two"):
        compare(client, "Same?", [red_png], deployments=["a"])
    keyed = VisionClient(endpoint=keyed_emulator.url, deployment="x", api_key=CANARY_KEY, max_retries=0)
    with pytest.raises(DeploymentNotFoundError, match="Deployment 'nope1' was not found"):
        compare(keyed, "Same?", [red_png], deployments=["nope1", "nope2"])


def test_a_ledger_without_prices_says_how_in_python_terms(emulator, red_png):
    from azmm_magic import UsageLedger, VisionClient

    ledger = UsageLedger()
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none", ledger=ledger)
    client.ask("a", [red_png])
    text = repr(ledger)
    assert "UsageLedger(prices=...)" in text and "%config" not in text  # the magic's wording stays in the magic


def test_usage_the_server_did_not_report_is_said_not_zero():
    """A stream from a server that sends no usage (e.g. Microsoft's aoai-api-simulator) leaves ``usage`` None:
    the footer, the ledger and the conversation table say so instead of showing 0 tokens."""
    from azmm_magic.display.result import footer_text

    silent = VisionResult(text="t", usage=Usage.from_sdk(None), deployment="sim", elapsed=1.0)
    assert silent.usage.reported is False and Usage.from_sdk(None).prompt_tokens == 0
    footer = footer_text(silent)
    assert footer.startswith("sim · usage not reported by the server · 1.00 s") and "0 in" not in footer
    assert footer_text(_r("d", 12, 3, 1.0)).startswith("d · 12 in / 3 out tokens")
    ledger = UsageLedger()
    ledger.record(silent)
    ledger.record(silent)
    (row,) = ledger.rows()
    assert row[4] == row[5] == "usage not reported by the server"
    ledger.record(_r("sim", 100, 20, 1.0))
    ledger.record(_r("other", 5, 1, 1.0))
    rows = {r[0]: r for r in ledger.rows()}
    assert rows["sim"][4] == "100 (+2 sent without usage: not reported by the server)"
    assert rows["other"][4] == "5" and rows["total"][5] == "21 (+2 sent without usage: not reported by the server)"
    # a cache entry keeps it; entries written before the field existed read as reported
    again = VisionResult.from_cache(silent.to_cache(), images=(), prompt="", endpoint_host="", elapsed=0.0)
    assert again.usage.reported is False
    old = {k: v for k, v in silent.to_cache()["usage"].items() if k != "reported"}
    assert Usage(**old).reported is True
