"""Regenerate the notebooks under notebooks/ from the cell lists below (keeps them reviewable as code).

Run: python scripts/build_notebooks.py   (outputs are stripped; the test suite executes them)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent / "notebooks"

SETUP = '''\
# Use Azure when AZURE_OPENAI_ENDPOINT and a deployment are set; otherwise start the local emulator.
import os
if os.environ.get("AZURE_OPENAI_ENDPOINT") and (os.environ.get("AZURE_OPENAI_DEPLOYMENT")
                                               or os.environ.get("AZURE_OPENAI_DEPLOYMENT_NAME")):
    print("Using Azure OpenAI at", os.environ["AZURE_OPENAI_ENDPOINT"])
else:
    print("No Azure settings found: starting the local emulator (answers are factual reports, not a model).")
    %azure_vision emulator'''

QUICKSTART = [
    new_markdown_cell(
        "# azmm_magic quickstart\n\n"
        "Ask an Azure OpenAI vision deployment about images, from a notebook cell. Without Azure settings this "
        "notebook runs against the **local emulator** that ships with the package: a real HTTP server that speaks "
        "Azure's wire format and answers with a factual report about the images it received (it is not a model)."
    ),
    new_code_cell("%load_ext azmm_magic"),
    new_code_cell(SETUP),
    new_markdown_cell("`%azure_vision config` shows every setting and where it came from (secrets are masked)."),
    new_code_cell("%azure_vision config"),
    new_markdown_cell(
        "## Images from anywhere\n\nA file path (here a real photo that ships with matplotlib), a matplotlib "
        "figure, a numpy array, a PIL image, raw bytes, a glob. On the magic line `-i NAME` or `-i {NAME}` "
        "names a variable."
    ),
    new_code_cell(
        "import csv\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from matplotlib import cbook\n\n"
        "photo = str(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))\n\n"
        "with cbook.get_sample_data('msft.csv') as f:\n"
        "    rows = list(csv.DictReader(line.decode() if isinstance(line, bytes) else line for line in f))\n"
        "closes = [float(r['Close']) for r in rows][::-1]\n"
        "chart_fig, ax = plt.subplots(figsize=(6, 3))\n"
        "ax.plot(closes, color='tab:blue')\n"
        "ax.set_title('MSFT closing price (sample data)')\n"
        "ax.set_xlabel('trading day'); ax.set_ylabel('USD')\n"
        "plt.close(chart_fig)\n"
        "print(photo)"
    ),
    new_markdown_cell(
        "## Ask\n\nThe cell body is the prompt. The answer streams in while it is written, renders as Markdown, "
        "and ends with a footer: deployment · tokens · seconds. `-o answer` keeps the `VisionResult`."
    ),
    new_code_cell(
        "%%azure_vision -i {photo} -i chart_fig --detail high -o answer\n"
        "What is in these two images? Compare them in three bullet points."
    ),
    new_code_cell("print(answer.usage)\nprint(answer.deployment, answer.finish_reason, f'{answer.elapsed:.2f} s')\nanswer.text[:300]"),
    new_markdown_cell("## Re-running is instant and free\n\nThe same cell again is answered from the session cache: no request is sent."),
    new_code_cell(
        "%%azure_vision -i {photo} -i chart_fig --detail high -o again\n"
        "What is in these two images? Compare them in three bullet points."
    ),
    new_code_cell("assert again.cached and again.text == answer.text\n%azure_vision cache"),
    new_markdown_cell(
        "## numpy, PIL, bytes\n\nArrays (uint8 or float in 0–1; gray, RGB, RGBA), PIL images and encoded bytes all work."
    ),
    new_code_cell(
        "import io\n"
        "import numpy as np\n"
        "from PIL import Image\n\n"
        "gradient = np.linspace(0, 1, 128 * 128 * 3).reshape(128, 128, 3)   # float image in [0, 1]\n"
        "swatch = Image.new('RGB', (96, 64), (30, 144, 255))                 # a PIL image\n"
        "buf = io.BytesIO(); Image.new('RGB', (40, 40), (255, 200, 0)).save(buf, 'PNG')\n"
        "png_bytes = buf.getvalue()                                          # encoded bytes"
    ),
    new_code_cell("%%azure_vision -i gradient -i swatch -i png_bytes --detail low\nDescribe the colours of each image."),
    new_markdown_cell(
        "## A folder at once\n\nA glob (quote it) sends every match in one request, in sorted order. (To ask about "
        "each image separately, see the batch notebook.)"
    ),
    new_code_cell(
        "from pathlib import Path\n"
        "Path('swatches').mkdir(exist_ok=True)\n"
        "for name, rgb in {'red': (220, 30, 30), 'green': (30, 160, 60), 'blue': (40, 80, 220)}.items():\n"
        "    Image.new('RGB', (64, 64), rgb).save(f'swatches/{name}.png')"
    ),
    new_code_cell('%%azure_vision -i "swatches/*.png" --detail low\nWhich of these swatches is the brightest?'),
    new_markdown_cell(
        "## Braces are safe\n\n`{name}` is filled in only when `name` is a variable; JSON and other braces are sent as written."
    ),
    new_code_cell(
        "subject = 'the photo'"
    ),
    new_code_cell(
        '%%azure_vision -i {photo} --no-stream\n'
        'Describe {subject}. Reply as JSON like {"people": 1, "setting": "indoor"}.'
    ),
    new_markdown_cell("## See the request before paying for it\n\n`--dry-run` shows what would be sent and the token estimate; nothing is sent."),
    new_code_cell("%%azure_vision -i {photo} -i chart_fig --detail high --dry-run\nWhat is in these two images?"),
    new_markdown_cell("## The Python API\n\nThe magic is a thin layer over `VisionClient`, which works in scripts too."),
    new_code_cell(
        "from azmm_magic import VisionClient\n"
        "ip = get_ipython()\n"
        "client = ip.magics_manager.registry['AzureVision'].client()   # the session's client and cache\n"
        "for piece in client.stream('One word for this photo?', images=[photo], detail='low'):\n"
        "    if isinstance(piece, str):\n"
        "        pass  # text as it arrives\n"
        "    else:\n"
        "        result = piece\n"
        "print(result.footer())"
    ),
    new_markdown_cell("## Mistakes give one clear line\n\nA missing file, for example (this cell fails on purpose):"),
    new_code_cell("%%azure_vision -i photos/does-not-exist.jpg\nWhat is this?", metadata={"tags": ["raises-exception"]}),
]

TEACHING = [
    new_markdown_cell(
        "# Lesson: asking a vision model about a photo (replayed answers)\n\n"
        "This lesson **replays** answers the instructor recorded earlier: they come from `teaching-answers.jsonl`, "
        "committed beside this notebook. No key, no endpoint and no network are needed, and nothing is sent to any "
        "service (`cache = \"replay\"`). A question the instructor did not record gives a clear error instead of a "
        "call.\n\n"
        "*Note:* the answers in `teaching-answers.jsonl` were recorded against azmm_magic's **local emulator**, because "
        "no Azure deployment was reachable when the file was made. They are the emulator's factual reports about the "
        "image it received, not a model's answers. An instructor who records against Azure gets real answers in "
        "exactly the same way (see the last section)."
    ),
    new_code_cell("%load_ext azmm_magic"),
    new_code_cell(
        "import os\n"
        "import tempfile\n\n"
        "RECORD = os.environ.get('AZMM_TEACHING_RECORD') == '1'   # instructor: record new answers\n"
        "DEPLOYMENT = 'emulator'   # the deployment the answers were recorded with (e.g. 'gpt-4o' on Azure)\n"
        "%config AzureVision.deployment = DEPLOYMENT\n"
        "if RECORD:\n"
        "    %config AzureVision.cache = 'sqlite'\n"
        "    %config AzureVision.cache_path = os.path.join(tempfile.mkdtemp(), 'recording.sqlite')\n"
        "    if not os.environ.get('AZURE_OPENAI_ENDPOINT'):\n"
        "        %azure_vision emulator\n"
        "else:\n"
        "    # a fresh answer store for this lesson, filled from the committed file\n"
        "    %config AzureVision.cache = 'replay'\n"
        "    %config AzureVision.cache_path = os.path.join(tempfile.mkdtemp(), 'lesson.sqlite')\n"
        "    %azure_vision cache import teaching-answers.jsonl"
    ),
    new_markdown_cell(
        "## 1. Look at a photo\n\nThe photo ships with matplotlib. `--chat lesson` starts a conversation named "
        "`lesson`: the next `--chat lesson` cell sends this question, the photo and the answer again, so the "
        "model can answer a follow-up."
    ),
    new_code_cell(
        "from matplotlib import cbook\n\n"
        "photo = str(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))"
    ),
    new_code_cell(
        "%%azure_vision -i {photo} --chat lesson\n"
        "Who or what is in this photo? Describe the setting in two sentences."
    ),
    new_markdown_cell("## 2. A follow-up question\n\nNo image this time: the conversation already has it."),
    new_code_cell(
        "%%azure_vision --chat lesson -o follow_up\n"
        "Judging by the clothing, roughly when was the photo taken?"
    ),
    new_code_cell("%azure_vision chat show lesson"),
    new_code_cell("# instructor only: save the answers recorded so far beside the notebook\n"
                  "if RECORD:\n    %azure_vision cache export teaching-answers.jsonl"),
    new_markdown_cell(
        "## 3. Off the script\n\nReplay mode never calls the service. A question that was not recorded is one "
        "clear error that names it (this cell fails on purpose):"
    ),
    new_code_cell(
        "%%azure_vision -i {photo}\nA question the instructor never asked.",
        metadata={"tags": ["raises-exception"]},
    ),
    new_markdown_cell("## 4. What was used\n\nEvery answer above came from the recorded file: 0 requests were sent."),
    new_code_cell("%azure_vision cache list"),
    new_code_cell(
        "%azure_vision usage\n"
        "ledger = get_ipython().magics_manager.registry['AzureVision'].ledger\n"
        "if not RECORD:\n"
        "    assert ledger.totals().requests == 0 and ledger.totals().cache_hits == 2\n"
        "print(f'requests sent: {ledger.totals().requests}, answers replayed: {ledger.totals().cache_hits}')"
    ),
    new_markdown_cell(
        "## For instructors: recording the answers\n\n"
        "1. Set `AZURE_OPENAI_ENDPOINT`, your key (`AZURE_OPENAI_API_KEY` or `%azure_vision login`) and put your "
        "deployment name in `DEPLOYMENT` above.\n"
        "2. Run the notebook top to bottom with `AZMM_TEACHING_RECORD=1` in the environment: answers go to a fresh "
        "SQLite cache, and the cell after `chat show` writes them to `teaching-answers.jsonl`.\n"
        "3. Commit `teaching-answers.jsonl` beside the notebook (it holds answers, deployment names and prompts; "
        "never a key).\n"
        "4. Students open the notebook (Binder works) and run it: `cache = \"replay\"` answers every recorded cell "
        "with no key and no network.\n\n"
        "Replay matches on the question, the images (by content hash), the options and the conversation so far, "
        "not on the endpoint. Use image files for lessons: a figure re-drawn by another matplotlib version may "
        "differ by a pixel and then no longer match."
    ),
]

EXPLORE = [
    new_markdown_cell(
        "# Explore a chart with a vision model\n\n"
        "Make a matplotlib chart, ask about it, continue the conversation, and get structured data back as a plain "
        "Python dict. Without Azure settings the notebook uses the local emulator (its answers are factual reports, "
        "not a model's)."
    ),
    new_code_cell("%load_ext azmm_magic"),
    new_code_cell(SETUP),
    new_code_cell(
        "import csv\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from matplotlib import cbook\n\n"
        "with cbook.get_sample_data('msft.csv') as f:\n"
        "    rows = list(csv.DictReader(line.decode() if isinstance(line, bytes) else line for line in f))\n"
        "closes = [float(r['Close']) for r in rows][::-1]\n"
        "chart, ax = plt.subplots(figsize=(6, 3))\n"
        "ax.plot(closes, color='tab:green')\n"
        "ax.set_title('MSFT closing price (sample data)')\n"
        "ax.set_xlabel('trading day'); ax.set_ylabel('USD')\n"
        "plt.close(chart)\n"
        "chart"
    ),
    new_markdown_cell("## Ask, then follow up\n\n`--chat` keeps the conversation: the follow-up sees the chart and the first answer."),
    new_code_cell("%%azure_vision -i chart --chat\nWhat does this chart show? What colour is the line?"),
    new_code_cell("%%azure_vision --chat -o follow_up\nIs the trend up or down over the period?"),
    new_code_cell("print(follow_up.footer())"),
    new_markdown_cell(
        "## Structured data back\n\n`--schema NAME` takes a JSON Schema dict (or a pydantic model class) from the "
        "notebook. The answer is checked against it, and `result.parsed` is a plain dict, ready to use."
    ),
    new_code_cell(
        "chart_facts = {\n"
        "    'type': 'object',\n"
        "    'properties': {\n"
        "        'title': {'type': 'string'},\n"
        "        'kind': {'enum': ['line', 'bar', 'scatter', 'other']},\n"
        "        'line_colour': {'type': 'string'},\n"
        "        'image_width': {'type': 'integer'},\n"
        "        'labels': {'type': 'array', 'items': {'type': 'string'}},\n"
        "    },\n"
        "}"
    ),
    new_code_cell("%%azure_vision -i chart --schema chart_facts -o facts\nRead the chart and fill in every field."),
    new_code_cell(
        "data = facts.parsed\n"
        "assert type(data) is dict and set(data) == set(chart_facts['properties'])\n"
        "for key, value in data.items():\n"
        "    print(f'{key:12} {value!r}')"
    ),
    new_markdown_cell(
        "## What it cost\n\nEvery call is counted per deployment, cached or not. With a price table (illustrative "
        "numbers here, per 1M input / output tokens) the ledger estimates the cost, and `--dry-run` shows the "
        "estimate before sending."
    ),
    new_code_cell(
        "deployment = get_ipython().magics_manager.registry['AzureVision'].session_settings().deployment\n"
        "prices = {deployment: (2.50, 10.00)}\n"
        "%config AzureVision.prices = prices"
    ),
    new_code_cell("%%azure_vision -i chart --detail low --dry-run\nSummarise the chart in one sentence."),
    new_code_cell("%azure_vision usage --plot"),
]


PANEL = [
    new_markdown_cell(
        "# The panel: ask about images without writing code\n\n"
        "`%azure_vision panel` shows a panel: choose files (or drop them on the dashed box), type a path, glob or "
        "URL, or pick an image variable; write a question; press **Send** (or Ctrl/Cmd+Enter). The answer streams "
        "in with the same footer as the magic. **Stop** ends a long answer. Each exchange is kept in the history "
        "below the panel; **to variable** stores the `VisionResult`, **to new cell** gives the equivalent "
        "`%%azure_vision` cell. Without Azure settings this notebook uses the local emulator (not a model)."
    ),
    new_code_cell("%load_ext azmm_magic"),
    new_code_cell(SETUP),
    new_markdown_cell("Image variables (PIL images, numpy arrays, matplotlib figures, bytes) appear in the panel's picker."),
    new_code_cell(
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from matplotlib import cbook\n\n"
        "photo = str(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))\n"
        "chart_fig, ax = plt.subplots(figsize=(4, 2.5))\n"
        "ax.bar(['a', 'b', 'c'], [3, 5, 2], color='tab:orange')\n"
        "ax.set_title('A small bar chart')\n"
        "plt.close(chart_fig)"
    ),
    new_code_cell("%azure_vision panel"),
    new_markdown_cell(
        "## The same panel from Python\n\n`VisionPanel()` uses the session's settings, client and cache. Its parts are "
        "ordinary widgets, so it can be driven from code too (handy for a demo or a test):"
    ),
    new_code_cell(
        "from azmm_magic import VisionPanel\n\n"
        "panel = VisionPanel()\n"
        "panel.add_images(photo)\n"
        "panel.add_images(chart_fig, label='chart_fig', cell_ref='{chart_fig}')\n"
        "panel.prompt.value = 'What is in these two images?'\n"
        "panel.ask()\n"
        "panel.wait()\n"
        "panel"
    ),
    new_code_cell("panel.result   # the VisionResult shown in the panel"),
    new_markdown_cell("The equivalent cell (what **to new cell** shows). Running it is a cache hit: no new request."),
    new_code_cell("print(panel.to_cell_source())"),
    new_code_cell(
        "%%azure_vision -i {photo} -i {chart_fig} -o again\n"
        "What is in these two images?"
    ),
    new_code_cell("assert again.cached and again.text == panel.result.text\n%azure_vision cache"),
]


BATCH = [
    new_markdown_cell(
        "# One prompt over a folder of images\n\n"
        "`--each` asks the same question about every image separately: one request per image, sent concurrently "
        "(at most `concurrency` at a time, lowered automatically when the service answers 429), with a progress "
        "bar and a gallery that fills in as answers arrive. Every outcome is kept, failures included, and answers "
        "are cached as they arrive, so re-running the cell (or resuming after an interrupt) sends only what is "
        "missing. Without Azure settings this notebook runs against the local emulator (its answers are factual "
        "reports, not a model)."
    ),
    new_code_cell("%load_ext azmm_magic"),
    new_code_cell(SETUP),
    new_markdown_cell("## A folder of generated images\n\nTwenty-four small pictures: a coloured background with a shape."),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n"
        "from PIL import Image, ImageDraw\n\n"
        "folder = Path(tempfile.mkdtemp(prefix='azmm-batch-demo-'))\n"
        "colours = ['crimson', 'orange', 'gold', 'seagreen', 'steelblue', 'purple']\n"
        "for i in range(24):\n"
        "    img = Image.new('RGB', (160, 120), colours[i % 6])\n"
        "    draw = ImageDraw.Draw(img)\n"
        "    box = (20 + 4 * i, 30, 80 + 4 * i, 90)   # every picture differs a little\n"
        "    (draw.ellipse if i % 2 else draw.rectangle)(box, fill='white')\n"
        "    img.save(folder / f'shape_{i:02d}.png')\n"
        "pattern = str(folder / '*.png')\n"
        "print(len(list(folder.glob('*.png'))), 'images in', folder)"
    ),
    new_markdown_cell(
        "## Ask about each one\n\n`-i {pattern} --each -o results`: the cell's value is a `BatchResult` (a list of "
        "`VisionResult`s and failure records, in input order)."
    ),
    new_code_cell(
        "%%azure_vision -i {pattern} --each --concurrency 8 --detail low -o results\n"
        "What is the background colour, and what white shape is in the middle? Answer in one short line."
    ),
    new_code_cell(
        "print(results.summary())\n"
        "print(results[0].text[:200])\n"
        "try:\n"
        "    table = results.to_dataframe()          # needs pandas (optional)\n"
        "except Exception:\n"
        "    table = results.to_records()\n"
        "table[['source', 'status', 'prompt_tokens', 'completion_tokens']].head() if hasattr(table, 'head') else table[:3]"
    ),
    new_markdown_cell(
        "## Re-running sends only what is missing\n\nA broken file joins the folder. The 24 answers come from the "
        "cache; only the new file is tried, and its failure is recorded without stopping anything."
    ),
    new_code_cell("(folder / 'zz_broken.png').write_bytes(b'this is not a PNG')"),
    new_code_cell(
        "%%azure_vision -i {pattern} --each --concurrency 8 --detail low -o again\n"
        "What is the background colour, and what white shape is in the middle? Answer in one short line."
    ),
    new_code_cell(
        "print(again.counts())\n"
        "assert again.counts()['cached'] == 24 and len(again.failures) == 1\n"
        "print(again.failures[0])"
    ),
    new_markdown_cell(
        "## The same from Python\n\n`client.batch(prompt, images)` returns the same `BatchResult`; "
        "`await client.abatch(...)` is the async twin."
    ),
    new_code_cell(
        "client = get_ipython().magics_manager.registry['AzureVision'].client()\n"
        "colours_only = client.batch('One word: the background colour?', sorted(folder.glob('shape_0*.png')),\n"
        "                            detail='low', progress=False)\n"
        "[(Path(s).name, r.usage.completion_tokens) for s, r in zip(colours_only.sources, colours_only)][:4]"
    ),
    new_markdown_cell(
        "## Thousands of images: the Azure OpenAI Batch API\n\n`--via batch-api` writes the JSONL input, uploads "
        "it and creates a Batch API job (a Global Batch deployment: 24-hour target, half the price). "
        "`%azure_vision jobs` lists jobs; `jobs wait ID` polls (once a minute against Azure); `jobs results ID` "
        "downloads the output, matches lines to images and fills the cache. The emulator finishes jobs in seconds."
    ),
    new_code_cell(
        "%%azure_vision -i {pattern} --via batch-api --detail low -o job\n"
        "What is the background colour? One word."
    ),
    new_code_cell("%azure_vision jobs"),
    new_code_cell(
        "import os\n"
        "on_azure = bool(os.environ.get('AZURE_OPENAI_ENDPOINT'))\n"
        "if not on_azure:   # against Azure, poll with job.wait() (once a minute) in a later session\n"
        "    job.wait(interval=0.5)\n"
        "    batch_results = job.results()\n"
        "    print(batch_results.summary())\n"
        "    print(batch_results.failures[0])"
    ),
]

DOCUMENTS = [
    new_markdown_cell(
        "# Beyond single images: PDF pages, video frames, phone photos and DataFrame rows\n\n"
        "`-i paper.pdf#page=2` sends a page of a PDF, `-i clip.mp4 --frames 4` four frames of a video (in time order, "
        "each with its timestamp), a HEIC/AVIF phone photo opens like a JPEG, and `-i df --each` asks about each "
        "row of a pandas DataFrame with the prompt filled in from the row. Without Azure settings this notebook runs "
        "against the local emulator (its answers are factual reports about what it received, not a model)."
    ),
    new_code_cell("%load_ext azmm_magic"),
    new_code_cell(SETUP),
    new_markdown_cell(
        "## A PDF with a figure\n\nTwo pages made with matplotlib's PDF backend: a chart of real sample data "
        "(MSFT closing prices) and a photo."
    ),
    new_code_cell(
        "import csv, tempfile\n"
        "from pathlib import Path\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from matplotlib import cbook\n"
        "from matplotlib.backends.backend_pdf import PdfPages\n\n"
        "work = Path(tempfile.mkdtemp(prefix='azmm-documents-'))\n"
        "with cbook.get_sample_data('msft.csv') as f:\n"
        "    rows = list(csv.DictReader(line.decode() if isinstance(line, bytes) else line for line in f))\n"
        "closes = [float(r['Close']) for r in rows][::-1]\n"
        "paper = str(work / 'paper.pdf')\n"
        "with PdfPages(paper) as pdf:\n"
        "    fig, ax = plt.subplots(figsize=(8.5, 11))\n"
        "    ax.plot(closes); ax.set_title('Figure 1: MSFT closing price'); ax.set_ylabel('USD')\n"
        "    pdf.savefig(fig); plt.close(fig)\n"
        "    fig, ax = plt.subplots(figsize=(8.5, 11))\n"
        "    ax.imshow(plt.imread(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))); ax.axis('off')\n"
        "    pdf.savefig(fig); plt.close(fig)\n"
        "print(paper)"
    ),
    new_markdown_cell(
        "`#page=1` picks the page (`#page=2-5` a range; no fragment: every page). The page is rendered at the "
        "resolution the `detail` setting keeps, never more pixels than are billed."
    ),
    new_code_cell('%%azure_vision -i "{paper}#page=1" --no-stream -o chart_answer\nWhat does the chart on this page show?'),
    new_code_cell("[image.source.rsplit('/', 1)[-1] + f' {image.width}x{image.height}' for image in chart_answer.images]"),
    new_markdown_cell("`--each` sends one request per page."),
    new_code_cell('%%azure_vision -i {paper} --each --detail low -o pages\nDescribe this page in one line.'),
    new_markdown_cell(
        "## A video\n\nA 4-second clip written with PyAV: a dot that moves from left to right. `--frames 4` samples "
        "four frames evenly; each is sent after a text part with its timestamp, so the model can reason about time. "
        "`#t=1,3` would restrict them to seconds 1 to 3."
    ),
    new_code_cell(
        "import av\n"
        "import numpy as np\n\n"
        "clip = str(work / 'clip.mp4')\n"
        "with av.open(clip, 'w') as container:\n"
        "    stream = container.add_stream('libx264', rate=10)\n"
        "    stream.width, stream.height, stream.pix_fmt = 320, 240, 'yuv420p'\n"
        "    for i in range(40):\n"
        "        frame = np.full((240, 320, 3), 235, np.uint8)\n"
        "        x = 20 + i * 7\n"
        "        frame[100:140, x:x + 40] = (200, 30, 30)\n"
        "        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):\n"
        "            container.mux(packet)\n"
        "    for packet in stream.encode():\n"
        "        container.mux(packet)\n"
        "print(clip)"
    ),
    new_code_cell('%%azure_vision -i {clip} --frames 4 --no-stream -o motion\nWhich way does the red square move?'),
    new_code_cell("[image.source.rsplit('/', 1)[-1] for image in motion.images]"),
    new_markdown_cell("With `--each`, `--frames-per-request 2` sends the frames two at a time."),
    new_code_cell('%%azure_vision -i {clip} --frames 4 --each --frames-per-request 2 -o windows\nWhat changes between these frames?'),
    new_markdown_cell(
        "## A DataFrame of images with labels\n\n`-i df --each`: the image column is found (or chosen with "
        "`--column NAME`), one request per row, and `{label}` is filled in from each row's `label` column "
        "(columns win over notebook variables). `to_dataframe()` returns the input rows with the answers added."
    ),
    new_code_cell(
        "import pandas as pd\n"
        "from PIL import Image, ImageDraw\n\n"
        "records = []\n"
        "for i, (colour, shape) in enumerate([('crimson', 'circle'), ('seagreen', 'square'), ('steelblue', 'circle')]):\n"
        "    img = Image.new('RGB', (160, 120), colour)\n"
        "    box = (50, 30, 110, 90)\n"
        "    (ImageDraw.Draw(img).ellipse if shape == 'circle' else ImageDraw.Draw(img).rectangle)(box, fill='white')\n"
        "    path = work / f'shape_{i}.png'\n"
        "    img.save(path)\n"
        "    records.append({'path': str(path), 'label': f'white {shape}', 'colour': colour})\n"
        "df = pd.DataFrame(records, index=['a', 'b', 'c'])\n"
        "df"
    ),
    new_code_cell('%%azure_vision -i df --each --detail low -o answers\nIs there a {label} on a {colour} background?'),
    new_code_cell("table = answers.to_dataframe()\ntable[['label', 'colour', 'answer', 'cached', 'prompt_tokens']]"),
    new_markdown_cell("The Python API does the same: `client.batch(prompt, df, column='path')`."),
    new_code_cell(
        "client = get_ipython().magics_manager.registry['AzureVision'].client()\n"
        "same = client.batch('Is there a {label} on a {colour} background?', df, column='path', detail='low', "
        "progress=False)\n"
        "print(same.summary())\n"
        "assert all(r.cached for r in same.results)   # the same requests as the cell above: answered from the cache"
    ),
]


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    ROOT.mkdir(exist_ok=True)
    path = ROOT / name
    nbformat.write(nb, path)
    return path


NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "teaching.ipynb": TEACHING,
    "explore.ipynb": EXPLORE,
    "panel.ipynb": PANEL,
    "batch.ipynb": BATCH,
    "documents.ipynb": DOCUMENTS,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        print(write(name, NOTEBOOKS[name]))
