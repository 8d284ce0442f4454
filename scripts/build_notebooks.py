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


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    ROOT.mkdir(exist_ok=True)
    path = ROOT / name
    nbformat.write(nb, path)
    return path


NOTEBOOKS = {"quickstart.ipynb": QUICKSTART, "panel.ipynb": PANEL}

if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        print(write(name, NOTEBOOKS[name]))
