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


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    ROOT.mkdir(exist_ok=True)
    path = ROOT / name
    nbformat.write(nb, path)
    return path


NOTEBOOKS = {"quickstart.ipynb": QUICKSTART, "batch.ipynb": BATCH}

if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        print(write(name, NOTEBOOKS[name]))
