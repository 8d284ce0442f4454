"""One request through the magic vs the same request written by hand with the raw ``openai`` SDK.

Both sides talk to the same zero-latency emulator (a separate process) and include image preparation as a user
would write it. Raw side: read the file, base64 it, build the content parts, ``client.chat.completions.create``.
Magic side: ``run_cell_magic`` with ``--no-stream --no-cache`` and a new prompt each call (so every call is
sent), then the result's mimebundle (what the notebook displays). Each magic call is paired with a raw call
next to it (the order alternates), and the figure is the median of the per-pair ratios: on a shared machine the
service's response time drifts, and pairing cancels the drift.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

from common import DEPLOYMENT, Context, Row, make_photo, median, ms, shell

MAX_TOKENS = 2048


def _raw_client(url: str):  # noqa: ANN202
    from openai import AzureOpenAI

    return AzureOpenAI(azure_endpoint=url, api_key="unused", api_version="2024-10-21", max_retries=0)


def _ask_raw(client, path: Path, prompt: str) -> str:  # noqa: ANN001
    """What a user writes without the magic."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    content = [
        {"type": "text", "text": prompt},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}", "detail": "auto"}},
    ]
    completion = client.chat.completions.create(
        model=DEPLOYMENT, messages=[{"role": "user", "content": content}], max_completion_tokens=MAX_TOKENS
    )
    return completion.choices[0].message.content or ""


def _compare(
    sh, raw, path: Path, reps: int, before_magic: Callable[[], None]  # noqa: ANN001
) -> tuple[float, float, float, int]:
    from azmm_magic.core.result import VisionResult

    sh.user_ns["img"] = str(path)
    magic_times, raw_times = [], []
    sent = 0
    for i in range(reps + 1):  # the first round warms connections and is not counted
        prompt = f"Describe this photo (call {i})."

        def magic() -> None:
            before_magic()
            started = time.perf_counter()
            result = sh.run_cell_magic("azure_vision", "-i img --no-stream --no-cache", prompt)
            result._repr_mimebundle_()
            if i:
                magic_times.append(time.perf_counter() - started)
            assert isinstance(result, VisionResult) and not result.cached and prompt in result.text

        def plain() -> None:
            started = time.perf_counter()
            text = _ask_raw(raw, path, prompt)
            if i:
                raw_times.append(time.perf_counter() - started)
            assert prompt in text

        for side in (magic, plain) if i % 2 else (plain, magic):
            side()
            sent += 1
    ratio = median([m / r for m, r in zip(magic_times, raw_times)])
    return ratio, median(magic_times), median(raw_times), sent


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    from azmm_magic.core.images import clear_prepared_memo

    reps = 5 if ctx.quick else 60
    photo = make_photo(ctx.tmp / "overhead-photo.jpg", 1024, 768, seed=2)
    big_size = (1600, 1200) if ctx.quick else (4032, 3024)
    big = make_photo(ctx.tmp / "overhead-phone.jpg", *big_size, seed=3)
    sh = shell(ctx.url)
    raw = _raw_client(ctx.url)
    rows, notes = [], []
    cases = [
        ("magic ÷ raw SDK, 1024×768 JPEG, new prompt each call (image memo warm)", photo, lambda: None),
        ("magic ÷ raw SDK, 1024×768 JPEG, image prepared afresh each call", photo, clear_prepared_memo),
        (f"magic ÷ raw SDK, {big_size[0]}×{big_size[1]} phone photo, prepared afresh each call", big,
         clear_prepared_memo),
    ]
    for name, path, before in cases:
        ratio, magic, plain, sent = _compare(sh, raw, path, reps, before)
        rows.append(Row(name, f"{ratio:.2f}× (medians {ms(magic)} vs {ms(plain)})", "≤ 1.15×", ratio <= 1.15))
        notes.append(f"{name}: {sent} requests; median of {reps} paired ratios.")
    raw.close()
    rows.append(_validation_row(ctx))
    return rows, notes


def _validation_row(ctx: Context) -> Row:
    """The emulator's request check (JSON schema + Azure's rules) on a 3-image request with a tool: what each
    request above pays on the service side, so it must stay well under the cost of decoding one image."""
    import io

    from PIL import Image

    from azmm_magic.emulator.validation import check_schema

    png = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(png, "PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    parts = [{"type": "text", "text": "describe"}] + [{"type": "image_url", "image_url": {"url": url}}] * 3
    params = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"],
              "additionalProperties": False}
    body = {"messages": [{"role": "user", "content": parts}, {"role": "user", "content": "What is in the picture?"}],
            "temperature": 0.5, "max_completion_tokens": 100,
            "tools": [{"type": "function", "function": {"name": "get_colour", "parameters": params}}]}
    check_schema(body)  # compiles the validator once
    calls, rounds = 50, []
    for _ in range(3 if ctx.quick else 7):  # the best round: the machine is shared, the validator's own cost counts
        started = time.perf_counter()
        for _ in range(calls):
            check_schema(body)
        rounds.append((time.perf_counter() - started) / calls)
    best = min(rounds)
    return Row("emulator request check, 3 images + a tool (best round)", ms(best), "≤ 5 ms", best <= 0.005)
