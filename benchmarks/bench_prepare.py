"""Preparing a 24-megapixel camera JPEG for ``detail=high`` and ``detail=low``: time, payload, billed tokens."""

from __future__ import annotations

import time

from common import Context, Row, make_photo, median, ms, size


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    from azmm_magic.core.images import clear_prepared_memo, estimate_image_tokens, prepare_images

    width, height = (1500, 1000) if ctx.quick else (6000, 4000)
    reps = 2 if ctx.quick else 7
    path = make_photo(ctx.tmp / "camera.jpg", width, height, seed=4, quality=90)
    naive = (path.stat().st_size + 2) // 3 * 4  # base64 of the file, what a hand-written request sends
    rows, notes = [], []
    for detail in ("high", "low"):
        times, cpu = [], []
        for _ in range(reps + 1):  # the first one warms the OS file cache and is not counted
            clear_prepared_memo()  # time the preparation, not the memo
            started, started_cpu = time.perf_counter(), time.process_time()
            image = prepare_images(str(path), detail=detail)[0]
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        took = median(times[1:])
        payload = (len(image.data or b"") + 2) // 3 * 4
        fewer = naive / payload
        before = estimate_image_tokens(width, height, detail)
        after = estimate_image_tokens(image.width, image.height, detail)
        rows.append(
            Row(
                f"prepare a {width}×{height} JPEG (q90), detail={detail}: time; base64 payload vs the file's",
                f"{ms(took)} (CPU {ms(median(cpu[1:]))}); {fewer:.0f}× fewer bytes ({size(naive)} → {size(payload)}, "
                f"{image.width}×{image.height}); tokens {before} → {after}",
                "≤ 250 ms; ≥ 10×; tokens unchanged",
                took <= 0.250 and fewer >= 10 and before == after,
            )
        )
        notes.append(f"detail={detail}: {'; '.join(image.notices) or 'sent as is'} (median of {reps}).")
    return rows, notes
