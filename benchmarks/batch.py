"""Benchmark the interactive batch (``VisionClient.batch``) against the emulator; prints a Markdown table.

    python benchmarks/batch.py            # full: 200 images @ 0.5 s, RPM run, 1000 × 12-MP JPEGs
    python benchmarks/batch.py --quick    # small sizes (seconds), same table

The emulator runs in its own process (``python -m azmm_magic.emulator``) so its CPU use does not slow the
client. Three measurements:

1. **Throughput**: N images with a fixed latency per request; wall time of ``client.batch`` vs the ideal bound
   ``N × latency / concurrency`` and vs a plain sequential loop over the SDK (timed on a sample of the images and
   extrapolated to N, which the table says).
2. **Rate limit**: the emulator enforces an RPM limit (sliding window, 429 + Retry-After like Azure); achieved
   answers per second as a fraction of the limit, 429s met, failed items.
3. **Memory**: M generated 12-megapixel JPEGs (generated once into a temp dir and reused), batch run in a fresh
   subprocess; its peak RSS (``VmHWM`` from ``/proc/self/status`` on Linux, else ``resource.getrusage``; no
   psutil).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_emulator(*args: str) -> tuple[subprocess.Popen[str], str]:
    from azmm_magic.emulator.server import start_subprocess

    return start_subprocess(list(args))


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def request_log(url: str) -> list[dict]:
    """The emulator's log of the requests it received (over HTTP, as any client would read it)."""
    import urllib.request

    with urllib.request.urlopen(url + "/_emulator/requests", timeout=30) as r:
        return json.loads(r.read())["requests"]


def small_images(directory: Path, n: int) -> Path:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (64 + i % 50, 48), ((i * 37) % 256, (i * 11) % 256, 200)).save(directory / f"img{i:04d}.png")
    return directory


def throughput(n: int, latency: float, concurrency: int, sample: int, work: Path) -> list[tuple[str, str, str]]:
    import openai

    from azmm_magic import VisionClient

    images = small_images(work / "small", n)
    proc, url = start_emulator("--latency", str(latency))
    try:
        client = VisionClient(endpoint=url, deployment="bench", auth="none", cache="off", concurrency=concurrency)
        client.batch("warm-up", [images / "img0000.png"], progress=False)  # imports, connection set-up
        t0 = time.perf_counter()
        result = client.batch("What colour is this?", str(images / "*.png"), progress=False)
        wall = time.perf_counter() - t0
        assert len(result.results) == n, result.summary()

        sdk = openai.AzureOpenAI(azure_endpoint=url, api_key="unused", api_version="2024-10-21")
        files = sorted(images.glob("*.png"))[:sample]
        t0 = time.perf_counter()
        for path in files:  # the plain loop a notebook would write
            request = client.prepare("What colour is this?", [path])
            sdk.chat.completions.create(model="bench", messages=request.messages(), max_completion_tokens=2048)
        per_item = (time.perf_counter() - t0) / len(files)
        sequential = per_item * n
    finally:
        stop(proc)
    ideal = n * latency / concurrency
    seq_note = f"{sequential:.1f} s" + ("" if sample >= n else f" (timed on {sample}, × {n / sample:g})")
    return [
        (f"{n} images @ {latency:g} s latency, concurrency {concurrency}: batch wall time", f"{wall:.2f} s", ""),
        ("ideal bound (images × latency / concurrency)", f"{ideal:.2f} s",
         f"batch reaches **{ideal / wall:.2f}** of ideal (goal ≥ 0.9)"),
        ("plain sequential SDK loop", seq_note, f"batch is **{sequential / wall:.1f}×** faster (goal ≥ 10×)"),
    ]


def rate_limited(n: int, rpm: int, window: float, latency: float, concurrency: int,
                 work: Path) -> list[tuple[str, str, str]]:
    from azmm_magic import VisionClient

    images = small_images(work / "rpm", n)
    proc, url = start_emulator("--latency", str(latency), "--rpm", str(rpm), "--rate-window", str(window))
    try:
        client = VisionClient(endpoint=url, deployment="bench", auth="none", cache="off", concurrency=concurrency)
        t0 = time.perf_counter()
        result = client.batch("Describe", str(images / "*.png"), progress=False)
        wall = time.perf_counter() - t0
        log = request_log(url)
    finally:
        stop(proc)
    limit = rpm / 60
    accepted = sorted(e["time"] for e in log if e["status"] == 200)
    refused = sum(1 for e in log if e["status"] == 429)
    # The first window admits a burst at once. After it, any `window` seconds admit at most limit × window
    # requests, so over whole windows [start, start + k·window) the accepted count / time is at most the limit.
    start = accepted[0] + window
    k = int((accepted[-1] - start) // window)
    span = k * window
    steady = sum(1 for t in accepted if start <= t < start + span) / span if k >= 1 else float("nan")
    stats = result.stats
    return [
        (f"{n} images, emulator limit {rpm} RPM ({limit:g}/s over a {window:g}-s sliding window), "
         f"concurrency {concurrency}", f"{wall:.2f} s",
         f"{len(result.results)} answered, **{len(result.failures)} failed** (goal 0); {refused} × 429 met, "
         f"window halved {stats.decreases}×"),
        (f"achieved throughput after the first window's burst ({k} whole windows, emulator clock)",
         f"{steady:.2f} /s",
         f"**{steady / limit:.0%}** of the limit (goal ≥ 90%)"),
        ("whole run, burst included: answers / wall time", f"{n / wall:.2f} /s", f"{n / wall / limit:.0%} of the limit"),
    ]


_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from azmm_magic import VisionClient
import openai, PIL.Image  # imported before the baseline

def peak_mb():
    # VmHWM belongs to this process image; ru_maxrss survives exec() and can report the parent's peak
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

base = peak_mb()
client = VisionClient(endpoint=sys.argv[2], deployment="bench", auth="none", cache="off", concurrency=int(sys.argv[4]))
t0 = time.perf_counter()
result = client.batch("Describe this photo.", sys.argv[3], progress=False)
wall = time.perf_counter() - t0
peak = peak_mb()
print(json.dumps({"baseline_mb": base, "peak_mb": peak, "wall": wall, "ok": len(result.results),
                  "failed": len(result.failures)}))
"""


def big_jpegs(m: int) -> Path:
    """``m`` distinct 4000×3000 JPEGs, generated once into the temp dir and reused by later runs."""
    import numpy as np
    from PIL import Image

    directory = Path(tempfile.gettempdir()) / f"azmm-bench-12mp-{m}"
    done = directory / ".complete"
    if done.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    w, h = 4000, 3000
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    base = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), (x + y) / 2 * np.ones((h, w))], axis=2)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 24, size=(h // 8, w // 8, 3), dtype=np.uint8)
    noise = np.repeat(np.repeat(noise, 8, axis=0), 8, axis=1)
    picture = np.clip(base + noise, 0, 255).astype(np.uint8)
    for i in range(m):
        img = Image.fromarray(picture)
        img.paste((i * 37 % 256, i * 91 % 256, i * 53 % 256), (100 + i % 3000, 100 + i % 2000, 900 + i % 3000, 900))
        img.save(directory / f"photo{i:04d}.jpg", quality=90)
    done.write_text("ok")
    return directory


def memory(m: int, concurrency: int) -> list[tuple[str, str, str]]:
    t0 = time.perf_counter()
    directory = big_jpegs(m)
    generated = time.perf_counter() - t0
    size_mb = sum(p.stat().st_size for p in directory.glob("*.jpg")) / 1e6
    proc, url = start_emulator("--latency", "0.05")
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(ROOT), url, str(directory / "*.jpg"), str(concurrency)],
            capture_output=True, text=True, timeout=3600, check=True,
        )
    finally:
        stop(proc)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return [
        (f"{m} generated 12-MP JPEGs ({size_mb:,.0f} MB on disk), concurrency {concurrency}",
         f"{data['wall']:.1f} s", f"{data['ok']} answered, {data['failed']} failed"
         + (f"; images generated in {generated:.0f} s (once)" if generated > 1 else "")),
        ("peak RSS of the batch process", f"{data['peak_mb']:.0f} MB",
         f"**goal ≤ 400 MB**; {data['baseline_mb']:.0f} MB after imports, before the batch"),
    ]


def versus_gather(n: int, latency: float, work: Path) -> list[tuple[str, str, str]]:
    """``client.batch`` vs what users write with other clients: an unbounded ``asyncio.gather`` of raw async SDK
    calls (requests prepared before the clock starts), same images, same emulator, no rate limit."""
    import asyncio

    import openai

    from azmm_magic import VisionClient

    images = small_images(work / "gather", n)
    proc, url = start_emulator("--latency", str(latency))
    try:
        client = VisionClient(endpoint=url, deployment="bench", auth="none", cache="off")
        client.batch("warm-up", [images / "img0000.png"], progress=False)
        files = sorted(images.glob("*.png"))
        bodies = [client.prepare("What colour is this?", [f]).messages() for f in files]

        async def gather() -> float:
            sdk = openai.AsyncAzureOpenAI(azure_endpoint=url, api_key="unused", api_version="2024-10-21")
            await sdk.chat.completions.create(model="bench", messages=bodies[0], max_completion_tokens=2048)
            t0 = time.perf_counter()
            await asyncio.gather(*(sdk.chat.completions.create(model="bench", messages=m, max_completion_tokens=2048)
                                   for m in bodies))
            took = time.perf_counter() - t0
            await sdk.close()
            return took

        from azmm_magic.service.limits import forget_rate_limits

        walls, colds, gathers, peaks = [], [], [], []
        for _ in range(2):  # interleaved
            forget_rate_limits()  # first contact: the deployment's budget is unknown, the window starts at 16
            t0 = time.perf_counter()
            result = client.batch("What colour is this?", [str(f) for f in files], progress=False)
            colds.append(time.perf_counter() - t0)
            assert len(result.results) == n, result.summary()
            # the deployment's budget is known from the answers before (any answer's rate-limit headers)
            t0 = time.perf_counter()
            result = client.batch("What colour is this?", [str(f) for f in files], progress=False)
            walls.append(time.perf_counter() - t0)
            assert len(result.results) == n, result.summary()
            peaks.append(result.stats.peak_in_flight)
            gathers.append(asyncio.run(gather()))
    finally:
        stop(proc)
    wall, cold, gathered = min(walls), min(colds), min(gathers)
    return [
        (f"{n} images @ {latency:g} s latency, no limit: batch ÷ unbounded asyncio.gather of raw async SDK calls "
         "(the deployment's budget known from an earlier answer)",
         f"**{wall / gathered:.2f}×** ({wall:.2f} s vs {gathered:.2f} s)",
         f"goal ≤ 1.1; best of 2 each; batch peak in flight {max(peaks)}"),
        ("the same, first contact with the deployment (window starts at 16, opens at the first answer)",
         f"**{cold / gathered:.2f}×** ({cold:.2f} s vs {gathered:.2f} s)", "best of 2"),
    ]


def limited(n: int, latency: float, work: Path, *, rpm: int | None = None, tpm: int | None = None,
            window: float = 1.0, known: bool = False) -> list[tuple[str, str, str]]:
    """The share of an RPM or TPM limit a batch sustains (emulator clock, after the first window), 429s, failures."""
    from azmm_magic import VisionClient

    images = small_images(work / f"lim{rpm}-{tpm}-{window:g}", n)
    args = ["--latency", str(latency), "--rate-window", str(window)]
    args += ["--rpm", str(rpm)] if rpm else []
    args += ["--tpm", str(tpm)] if tpm else []
    proc, url = start_emulator(*args)
    try:
        # the emulator's own first request (its imports: over a second) is not the client's; a deployment of its
        # own, so that the limit of the one measured is untouched
        VisionClient(endpoint=url, deployment="warm-up", auth="none", cache="off").ask("warm-up", [images / "img0000.png"])
        client = VisionClient(endpoint=url, deployment="bench", auth="none", cache="off", max_tokens=300)
        if known:  # one answer first (a notebook's first cell): its headers tell the batch the budget
            client.ask("Describe", [images / "img0000.png"])
        began, t0 = time.time(), time.perf_counter()
        result = client.batch("Describe", str(images / "*.png"), progress=False)
        wall = time.perf_counter() - t0
        log = request_log(url)
    finally:
        stop(proc)
    log = [e for e in log if e["deployment"] == "bench" and e["time"] >= began]  # the batch's requests only
    ok = sorted(e["time"] for e in log if e["status"] == 200)
    refused = sum(1 for e in log if e["status"] == 429)
    # After the first window, any `window` seconds admit at most the allowance, so over whole windows
    # [start, start + k·window) the answers per second are at most the limit (an open-ended span is not).
    start = ok[0] + window
    k = int((ok[-1] - start) // window)
    steady = sum(1 for t in ok if start <= t < start + k * window) / (k * window) if k >= 1 else float("nan")
    whole = ""
    if rpm:
        per_s, what = rpm / 60, f"{rpm} RPM"
    else:
        per_request = result.results[0].usage.prompt_tokens + 300
        per_s, what = (tpm or 0) / 60 / per_request, f"{tpm} TPM (~{per_request} tokens per request)"
        fits = int((tpm or 0) * window / 60 // per_request)  # whole requests a window's tokens admit
        whole = f" = **{steady / (fits / window):.0%}** of the {fits} whole requests a window admits"
    how = "budget known from one earlier answer" if known else "first contact"
    return [
        (f"{n} images, limit {what} per {window:g}-s window, {latency:g} s latency, {how}: sustained after the first "
         f"window ({k} whole windows)", f"**{steady / per_s:.0%}** of the limit{whole}",
         f"goal ≥ 95%; {len(result.failures)} failed (goal 0); {refused} × 429 = {refused / max(1, len(log)):.0%} of "
         f"requests (goal < 10%); {result.stats.paced} sends paced; {wall:.1f} s"),
    ]


_PHOTOS_CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from azmm_magic import VisionClient
from azmm_magic.core.images import clear_prepared_memo, expand_sources, image_options, prepare_leaf
import openai, PIL.Image

def peak_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")

files = sorted(os.path.join(sys.argv[3], f) for f in os.listdir(sys.argv[3]) if f.endswith(".jpg"))
opts = image_options("auto", "gpt-4o", False, 20 * 1024 * 1024)
sample = files[: int(sys.argv[4])]
prepare_leaf(expand_sources(sample[0])[0], opts)
clear_prepared_memo()
times = []
for f in sample:  # the median photo: one slow moment of a shared machine does not move the reference
    t0 = time.perf_counter()
    prepare_leaf(expand_sources(f)[0], opts)
    times.append(time.perf_counter() - t0)
single = sorted(times)[len(times) // 2]
clear_prepared_memo()
base = peak_mb()
client = VisionClient(endpoint=sys.argv[2], deployment="bench", auth="none", cache="off")
t0 = time.perf_counter()
result = client.batch("Describe this photo.", files, progress=False)
wall = time.perf_counter() - t0
print(json.dumps({"single": single, "wall": wall, "n": len(files), "ok": len(result.results),
                  "failed": len(result.failures), "peak_mb": peak_mb(), "baseline_mb": base,
                  "processes": result.stats.prepare_processes, "workers": result.stats.prepare_workers}))
"""


def photos(m: int) -> list[tuple[str, str, str]]:
    """``m`` 12-MP JPEGs, emulator at zero latency answering without decoding: wall ÷ (single-thread preparation
    time ÷ cores), and peak RSS."""
    directory = big_jpegs(m)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    proc, url = start_emulator("--no-decode")
    try:
        from azmm_magic import VisionClient

        # the emulator's own first request (its imports: over a second of CPU) is not the batch's
        VisionClient(endpoint=url, deployment="warm-up", auth="none", cache="off").ask(
            "warm-up", [sorted(directory.glob("*.jpg"))[0]])
        out = subprocess.run([sys.executable, "-c", _PHOTOS_CHILD, str(ROOT), url, str(directory), str(min(m, 15))],
                             capture_output=True, text=True, timeout=3600, check=True)
    finally:
        stop(proc)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    ideal = d["single"] * d["n"] / cpus
    return [
        (f"{d['n']} × 12-MP JPEG, --each, emulator at zero latency not decoding: wall ÷ (single-thread preparation "
         f"÷ {cpus} cores)", f"**{d['wall'] / ideal:.2f}** ({d['wall']:.1f} s vs {ideal:.1f} s)",
         f"goal ≤ 1.15; {d['single'] * 1000:.0f} ms per photo on one thread (median of 15); {d['workers']} "
         f"{'processes' if d['processes'] else 'threads'}; {d['ok']} answered, {d['failed']} failed"),
        ("peak RSS of that batch process", f"{d['peak_mb']:.0f} MB",
         f"goal ≤ 400 MB; {d['baseline_mb']:.0f} MB before the batch"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests): seconds instead of minutes")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the 12-MP memory run")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="azmm-bench-") as tmp:
        work = Path(tmp)
        if args.quick:
            rows += throughput(n=24, latency=0.2, concurrency=8, sample=4, work=work)
            rows += versus_gather(n=24, latency=0.2, work=work)
            rows += rate_limited(n=40, rpm=600, window=1.0, latency=0.05, concurrency=8, work=work)
            if not args.skip_memory:
                rows += memory(m=6, concurrency=4)
        else:
            rows += throughput(n=200, latency=0.5, concurrency=16, sample=20, work=work)
            rows += versus_gather(n=200, latency=0.5, work=work)
            rows += rate_limited(n=300, rpm=1200, window=1.0, latency=0.1, concurrency=16, work=work)
            rows += limited(200, 0.5, work, rpm=300, window=1.0)
            rows += limited(200, 0.5, work, rpm=300, window=1.0, known=True)
            rows += limited(200, 0.5, work, rpm=300, window=10.0)
            rows += limited(200, 0.5, work, tpm=300_000, window=1.0)
            rows += limited(200, 0.5, work, tpm=300_000, window=10.0)
            if not args.skip_memory:
                rows += photos(m=200)
                rows += memory(m=1000, concurrency=16)
    from common import print_measurements

    print_measurements("batch", args.quick, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
