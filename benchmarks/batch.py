"""Benchmark the interactive batch (``VisionClient.batch``) against the emulator; prints a Markdown table.

    python benchmarks/batch.py            # full: 200 images @ 0.5 s, RPM run, 1000 × 12-MP JPEGs
    python benchmarks/batch.py --quick    # small sizes (seconds), same table
    python benchmarks/batch.py --only-gather --llama-python /tmp/li/bin/python   # against raw and LlamaIndex gathers
    python benchmarks/batch.py --only-limits                                      # the rate-limited rows

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
from typing import Any

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


def ordinary_images(directory: Path, n: int) -> Path:
    """``n`` noisy 256×256 PNGs (~200 KB each: every pixel random, so they compress like nothing), made once."""
    import numpy as np
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        path = directory / f"noisy{i:04d}.png"
        if not path.exists():
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path)
    return directory


def _raw_gather(url: str, files: list[Path], prompt: str) -> tuple[float, float]:
    """What a notebook writes with the bare SDK: an unbounded ``asyncio.gather`` over ``AsyncAzureOpenAI``, each
    file read and base64-encoded as it is (inside the clock). Returns (wall, this process's CPU) in seconds."""
    import asyncio
    import base64

    import openai

    def messages(path: Path) -> list[dict]:
        kind = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return [{"role": "user", "content": [{"type": "text", "text": prompt},
                                             {"type": "image_url", "image_url": {"url": f"data:image/{kind};base64,{data}"}}]}]

    async def run() -> tuple[float, float]:
        sdk = openai.AsyncAzureOpenAI(azure_endpoint=url, api_key="unused", api_version="2024-10-21")
        await sdk.chat.completions.create(model="bench", messages=messages(files[0]), max_completion_tokens=2048)
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(sdk.chat.completions.create(model="bench", messages=messages(f), max_completion_tokens=2048)
                               for f in files))
        took = time.perf_counter() - t0, time.process_time() - c0
        await sdk.close()
        return took

    return asyncio.run(run())


_LLAMA_CHILD = r"""
import asyncio, json, sys, time, warnings
warnings.simplefilter("ignore")
from llama_index.core.base.llms.types import ImageBlock
from llama_index.multi_modal_llms.azure_openai import AzureOpenAIMultiModal

url, files = sys.argv[1], sys.argv[2:]
llm = AzureOpenAIMultiModal(engine="bench", model="gpt-4o", azure_endpoint=url, api_key="unused",
                            api_version="2024-10-21", max_new_tokens=2048)

async def main():
    await llm.acomplete("What colour is this?", image_documents=[ImageBlock(path=files[0])])
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(llm.acomplete("What colour is this?", image_documents=[ImageBlock(path=f)]) for f in files))
    return time.perf_counter() - t0, time.process_time() - c0

wall, cpu = asyncio.run(main())
print(json.dumps({"wall": wall, "cpu": cpu}))
"""


def _llama_gather(python: str, url: str, files: list[Path]) -> tuple[float, float] | None:
    """The same gather through LlamaIndex's ``AzureOpenAIMultiModal.acomplete``, in the interpreter ``python``
    (a virtual environment where ``llama-index-multi-modal-llms-azure-openai`` is installed)."""
    out = subprocess.run([python, "-c", _LLAMA_CHILD, url, *map(str, files)], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        print(f"LlamaIndex gather failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["wall"], data["cpu"]


def _timed_batch(client: Any, files: list[Path], *, cold: bool) -> tuple[float, float]:
    from azmm_magic.service.limits import forget_rate_limits

    if cold:
        forget_rate_limits()  # first contact: the deployment's budget is unknown, the window starts at 4
    t0, c0 = time.perf_counter(), time.process_time()
    result = client.batch("What colour is this?", [str(f) for f in files], progress=False)
    took = time.perf_counter() - t0, time.process_time() - c0
    assert len(result.results) == len(files), result.summary()
    return took


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "load n/a"


def versus_gather(n: int, latency: float, work: Path, *, repeats: int = 2,
                  llama_python: str | None = None) -> list[tuple[str, str, str]]:
    """``client.batch`` vs what users write with other clients, on ordinary images (noisy 256×256 PNGs): an
    unbounded ``asyncio.gather`` of raw async SDK calls (and of LlamaIndex's ``acomplete`` when ``llama_python``
    is given), same images, same emulator, no rate limit. Wall and client CPU (this process; the emulator runs in
    its own), best of ``repeats`` interleaved runs, with the 1-minute load average of the machine."""
    from azmm_magic import VisionClient

    files = sorted(ordinary_images(work / "ordinary", n).glob("*.png"))[:n]
    size_kb = sum(f.stat().st_size for f in files) / len(files) / 1000
    proc, url = start_emulator("--latency", str(latency))
    runs: dict[str, list[tuple[float, float]]] = {"raw": [], "known": [], "cold": [], "llama": []}
    loads = []
    try:
        client = VisionClient(endpoint=url, deployment="bench", auth="none", cache="off")
        client.batch("warm-up", [files[0]], progress=False)
        for _ in range(repeats):  # interleaved
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
            runs["raw"].append(_raw_gather(url, files, "What colour is this?"))
            runs["cold"].append(_timed_batch(client, files, cold=True))
            # the deployment's budget is known from the answers before (any answer's rate-limit headers)
            runs["known"].append(_timed_batch(client, files, cold=False))
            if llama_python:
                got = _llama_gather(llama_python, url, files)
                if got is not None:
                    runs["llama"].append(got)
    finally:
        stop(proc)
    raw_wall, raw_cpu = min(w for w, _ in runs["raw"]), min(c for _, c in runs["raw"])
    where = (f"{n} noisy 256×256 PNGs (~{size_kb:.0f} KB) @ {latency:g} s latency, no limit, best of {repeats}, "
             f"load {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} CPUs")
    rows = [(f"{where}: unbounded asyncio.gather of raw AsyncAzureOpenAI calls (files read and base64-encoded in "
             "the clock)", f"{raw_wall:.2f} s", f"client CPU {raw_cpu:.2f} s")]
    if runs["llama"]:
        wall, cpu = min(w for w, _ in runs["llama"]), min(c for _, c in runs["llama"])
        rows.append(("the same gather through LlamaIndex AzureOpenAIMultiModal.acomplete",
                     f"{wall:.2f} s ({wall / raw_wall:.2f}× raw)", f"client CPU {cpu:.2f} s ({cpu / raw_cpu:.1f}×)"))
    elif llama_python:
        rows.append(("the same gather through LlamaIndex", "failed", "see stderr"))
    for key, what, goal in (("known", "the deployment's budget known from an earlier answer", "1.05"),
                            ("cold", "first contact (window starts at 4, opens at the first answer)", "1.2")):
        wall, cpu = min(w for w, _ in runs[key]), min(c for _, c in runs[key])
        rows.append((f"VisionClient.batch, {what}", f"**{wall / raw_wall:.2f}×** raw ({wall:.2f} s)",
                     f"goal ≤ {goal}×; client CPU {cpu:.2f} s = **{cpu / raw_cpu:.1f}×** raw (goal ≤ 2×)"))
    return rows


_PHOTO_BATCH_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from azmm_magic import VisionClient
files = sys.argv[3:]
client = VisionClient(endpoint=sys.argv[2], deployment="bench", auth="none", cache="off")
client.batch("warm-up", files[:1], progress=False)
c0, t0 = time.process_time(), time.perf_counter()
result = client.batch("Describe this photo.", files, progress=False)
wall = time.perf_counter() - t0
assert len(result.results) == len(files), result.summary()
print(json.dumps({"wall": wall, "cpu_before": c0}), flush=True)
"""


def photos_versus_gather(m: int, latency: float) -> list[tuple[str, str, str]]:
    """12-MP JPEGs: the raw gather sends each file as it is (a notebook's first try); the batch prepares each on
    every core (downscaled to what the service keeps). Emulator not decoding, so that its CPU does not decide."""
    directory = big_jpegs(m)
    files = sorted(directory.glob("*.jpg"))[:m]
    proc, url = start_emulator("--latency", str(latency), "--no-decode")
    try:
        load = _load()
        raw_wall, raw_cpu = _raw_gather(url, files, "Describe this photo.")
        child = subprocess.Popen([sys.executable, "-c", _PHOTO_BATCH_CHILD, str(ROOT), url, *map(str, files)],
                                 stdout=subprocess.PIPE, text=True)
        out = child.stdout.read() if child.stdout else ""
        _, status, usage = os.wait4(child.pid, 0)  # its CPU (its worker processes belong to its forkserver)
        child.returncode = os.waitstatus_to_exitcode(status)
    finally:
        stop(proc)
    data = json.loads(out.strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime - data["cpu_before"]
    return [
        (f"{m} × 12-MP JPEG @ {latency:g} s latency ({load}): raw gather sending the files as they are",
         f"{raw_wall:.2f} s", f"client CPU {raw_cpu:.2f} s"),
        ("VisionClient.batch on the same photos (each downscaled to what the service keeps, on every core)",
         f"**{data['wall'] / raw_wall:.2f}×** raw ({data['wall']:.2f} s)",
         f"client CPU {cpu:.2f} s in the main process (its worker processes, which decode the photos, are not "
         "counted)"),
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
         f"requests (goal < 5%); {result.stats.paced} sends paced; {wall:.1f} s"),
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
    parser.add_argument("--only-gather", action="store_true", help="only the rows against a raw gather")
    parser.add_argument("--only-limits", action="store_true", help="only the rate-limited rows")
    parser.add_argument("--llama-python", metavar="PYTHON", default=None,
                        help="an interpreter with llama-index-multi-modal-llms-azure-openai installed: adds the "
                             "LlamaIndex gather as a second reference")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="azmm-bench-") as tmp:
        work = Path(tmp)
        if args.only_limits:
            rows += rate_limited(n=300, rpm=1200, window=1.0, latency=0.1, concurrency=16, work=work)
            rows += limited(200, 0.5, work, rpm=300, window=1.0)
            rows += limited(200, 0.5, work, rpm=300, window=1.0, known=True)
            rows += limited(200, 0.5, work, rpm=300, window=10.0)
            rows += limited(200, 0.5, work, tpm=300_000, window=1.0)
        elif args.only_gather:
            rows += versus_gather(n=24 if args.quick else 200, latency=0.2 if args.quick else 0.5, work=work,
                                  repeats=1 if args.quick else 2, llama_python=args.llama_python)
            if not args.skip_memory:
                rows += photos_versus_gather(m=6 if args.quick else 24, latency=0.5)
        elif args.quick:
            rows += throughput(n=24, latency=0.2, concurrency=8, sample=4, work=work)
            rows += versus_gather(n=24, latency=0.2, work=work, repeats=1, llama_python=args.llama_python)
            rows += rate_limited(n=40, rpm=600, window=1.0, latency=0.05, concurrency=8, work=work)
            if not args.skip_memory:
                rows += memory(m=6, concurrency=4)
        else:
            rows += throughput(n=200, latency=0.5, concurrency=16, sample=20, work=work)
            rows += versus_gather(n=200, latency=0.5, work=work, llama_python=args.llama_python)
            rows += photos_versus_gather(m=24, latency=0.5)
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
