"""Regenerate the notebooks under notebooks/ from the cell lists below (keeps them reviewable as code).

    python scripts/build_notebooks.py                    # write every notebook (outputs stripped; the tests run them)
    python scripts/build_notebooks.py teaching.ipynb     # write one
    python scripts/build_notebooks.py --executed         # docs/quickstart.ipynb + docs/quickstart.html: the
                                                         # quickstart executed against the local emulator
    python scripts/build_notebooks.py --record-teaching  # re-record notebooks/teaching-answers.jsonl (teaching.ipynb
                                                         # with RECORD = True; the emulator unless Azure is configured)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "notebooks"
DOCS = REPO / "docs"

#: The first cell of every notebook: load the extension (a Binder kernel does not preload it). write() puts the
#: install-where-missing lines of INSTALL above it.
LOAD = "%load_ext azmm_magic"

#: Where the notebooks are published: the "Open in Colab" links (README and each notebook's first cell) open them
#: from there. One place to change it (pyproject.toml's [project.urls] says the same).
REPOSITORY = "azmm-magic/azmm_magic"
BRANCH = "main"
#: the extra each notebook needs beyond the core install (the README's notebook table says the same)
EXTRAS = {"batch.ipynb": "[notebooks]", "documents.ipynb": "[notebooks]", "evaluate.ipynb": "[notebooks]"}
#: On Colab, Kaggle or any fresh environment the first cell installs the package where it is missing. Installing it
#: moves nothing the runtime already has (scripts/test-hosted.sh checks that), so no restart is needed.
INSTALL = """\
# Colab, Kaggle or a fresh environment: install azmm_magic where it is missing. It only adds what is missing
# (nothing the runtime has is upgraded), so the runtime needs no restart.
import importlib.util

if importlib.util.find_spec("azmm_magic") is None:
    %pip install -q "azmm_magic{extra}"
"""


def colab_url(name: str) -> str:
    """The "Open in Colab" address of notebooks/NAME."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{name}"

#: The setup cell: decide from the session's *resolved* settings (%config, %azure_vision login, environment),
#: never from environment variables alone, and start the emulator only when no endpoint is configured anywhere.
SETUP = '''\
# Which service? The one this session is configured for: %config AzureVision.endpoint / .deployment,
# %azure_vision login, or the environment (AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_DEPLOYMENT or
# AZURE_OPENAI_CHAT_DEPLOYMENT_NAME, a key or az login). No endpoint anywhere: the local emulator (not a model).
from azmm_magic import session

settings = session().settings
if settings.endpoint:
    print(f"Using {settings.endpoint_host} (endpoint from {settings.sources.get('endpoint', 'default')}), "
          f"deployment {settings.deployment!r}")
    if not settings.deployment:
        print("Set the deployment first: %config AzureVision.deployment = 'NAME' (your deployment's name).")
else:
    %azure_vision emulator'''

#: Going to real Azure: the same text in the quickstart and in the lab's notes for instructors.
AZURE_GUIDE = """\
## Going to real Azure

Everything above runs the same against an Azure OpenAI deployment; only the settings change.

1. **Create a resource**: in the Azure portal, *Azure OpenAI* (or an *Azure AI Foundry* resource), or with the CLI:
   `az cognitiveservices account create -n RESOURCE -g GROUP -l swedencentral --kind OpenAI --sku S0
   --custom-domain RESOURCE`. Its endpoint is `https://RESOURCE.openai.azure.com/`.
2. **Deploy a vision model** (gpt-4o, gpt-4o-mini, gpt-4.1, ...): in the Foundry portal's *Deployments*, or
   `az cognitiveservices account deployment create -n RESOURCE -g GROUP --deployment-name vision
   --model-name gpt-4o --model-version 2024-11-20 --model-format OpenAI --sku-name GlobalStandard --sku-capacity 10`.
3. **Deployment name, not model name.** You call a *deployment* (here `vision`), which runs a *model* (`gpt-4o`,
   version `2024-11-20`). azmm_magic needs the deployment name: `%config AzureVision.deployment = "vision"` or
   `AZURE_OPENAI_DEPLOYMENT`. The footer shows the deployment; `result.model` the model that answered.
4. **Endpoint and credentials**: `%config AzureVision.endpoint = "https://RESOURCE.openai.azure.com/"` (or
   `AZURE_OPENAI_ENDPOINT`). Then either a key (*Keys and Endpoint* in the portal) in `AZURE_OPENAI_API_KEY` or
   typed with `%azure_vision login` (kept in memory; never put a key in a cell, it is saved with the notebook), or
   no key at all: `az login` with the *Cognitive Services OpenAI User* role on the resource (Microsoft Entra ID).
   Run this notebook's setup cell again: it keeps those settings and does not start the emulator.
5. **Mini models count images differently.** gpt-4o-mini bills an image as about 33 times the tokens of gpt-4o
   (2,833 + 5,667 per tile instead of 85 + 170); gpt-4.1-mini/nano and o4-mini count 32-pixel patches. Tell
   azmm_magic which rule your model uses so estimates and downscaling are right:
   `%config AzureVision.token_rule = "gpt-4o-mini"` (or `gpt-4.1-mini`, `gpt-4.1-nano`, `o4-mini`).
6. **What it costs**: you pay per token, input and output. An image at `--detail low` is a flat 85 tokens (gpt-4o);
   `high` (and `auto`, usually) is 85 + 170 per 512-pixel tile, 765 for a 1024×768 photo. With list prices
   around 2.50 USD per million input tokens and 10 USD per million output tokens (gpt-4o, global standard,
   2025; check the Azure pricing page for your region and deployment type), a one-photo question costs a fraction
   of a US cent; 5,000 photos with one-line answers about 3 USD at `low` and 12 USD at `high`. Put your prices in
   `%config AzureVision.prices = {"vision": (2.50, 10.00), "currency": "USD"}`; then `--dry-run` shows the cost
   (the input's estimate and the output's ceiling, apart) before anything is sent and `%azure_vision usage` the estimate so far. The Batch API (`--via batch-api`, a Global Batch deployment) costs half, within 24 hours.
"""

#: What the emulator can and cannot show: said once per notebook, where it matters.
EMULATOR_LIMITS = """\
**What the emulator can and cannot show.** It is a real HTTP server that speaks Azure's wire format, checks requests
as strictly as Azure does, and counts tokens with Azure's published rules: **token counts, image sizes, what was
sent, caching, errors and rate limits are real** and measurable here. Its answers are not a model's: a factual
report about what it received. Its colour names are coarse (a few dozen names), it ignores instructions such as
"answer in one line", and its `--schema` answers are placeholders of the right type (`"emulator text"`) except the
few fields it can read from pixels (a colour among an enum's names, light/dark, portrait/landscape, a count of solid
blobs), so do not judge answer quality on it: that needs a real deployment.
"""

QUICKSTART = [
    new_markdown_cell(
        "# azmm_magic quickstart (15 minutes)\n\n"
        "Ask an Azure OpenAI vision deployment about images, from a notebook cell. Without Azure settings this "
        "notebook runs against the **local emulator** that ships with the package: a real HTTP server that speaks "
        "Azure's wire format and answers with a factual report about the images it received (it is not a model). "
        "The last section says how to go to real Azure and what it costs."
    ),
    new_code_cell(LOAD),
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
        "from pathlib import Path\n"
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
        "print(Path(photo).name)"
    ),
    new_markdown_cell(
        "## Ask\n\nThe cell body is the prompt. The answer streams in while it is written, renders as Markdown, "
        "and ends with a footer: deployment · tokens · seconds. `-o answer` keeps the `VisionResult`.\n\n"
        "**Images are billed as input tokens.** `--detail low` costs a flat 85 tokens per image (gpt-4o); `high` "
        "costs 85 + 170 per 512-pixel tile (765 for a 1024×768 photo) and lets the model read small details; the "
        "default `auto` lets the service choose, usually as `high`. Start with `low` and raise it when the answer "
        "needs detail: the dry run at the end of this notebook shows the estimate before anything is sent."
    ),
    new_code_cell(
        "%%azure_vision -i {photo} -i chart_fig --detail low -o answer\n"
        "What is in these two images? Compare them in three bullet points."
    ),
    new_code_cell("print(answer.usage)\nprint(answer.deployment, answer.finish_reason, f'{answer.elapsed:.2f} s')\nanswer.text[:300]"),
    new_markdown_cell("## Re-running is instant and free\n\nThe same cell again is answered from the session cache: no request is sent."),
    new_code_cell(
        "%%azure_vision -i {photo} -i chart_fig --detail low -o again\n"
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
        "import tempfile\n\n"
        "swatches = tempfile.mkdtemp(prefix='swatches-')   # a scratch folder: nothing is left next to the notebook\n"
        "for name, rgb in {'red': (220, 30, 30), 'green': (30, 160, 60), 'blue': (40, 80, 220)}.items():\n"
        "    Image.new('RGB', (64, 64), rgb).save(f'{swatches}/{name}.png')"
    ),
    new_code_cell('%%azure_vision -i "{swatches}/*.png" --detail low\nWhich of these swatches is the brightest?'),
    new_markdown_cell(
        "## Braces are safe\n\n`{name}` is filled in only when `name` is a variable; JSON and other braces are sent as written."
    ),
    new_code_cell("subject = 'the photo'"),
    new_code_cell(
        '%%azure_vision -i {photo} --detail low --no-stream\n'
        'Describe {subject}. Reply as JSON like {"people": 1, "setting": "indoor"}.'
    ),
    new_markdown_cell(
        "## See the request, and its cost, before paying for it\n\n`--dry-run` shows what would be sent and the "
        "token estimate; nothing is sent. With a price table (illustrative gpt-4o list prices here, USD per million "
        "input / output tokens) it adds the cost: the input's estimate and the output's ceiling (the whole "
        "output-token limit), apart. Compare `high` with the `low` used above: the input is what changes."
    ),
    new_code_cell(
        "%config AzureVision.prices = {'*': (2.50, 10.00), 'currency': 'USD'}"
    ),
    new_code_cell("%%azure_vision -i {photo} -i chart_fig --detail high --dry-run\nWhat is in these two images?"),
    new_code_cell("%%azure_vision -i {photo} -i chart_fig --detail low --dry-run\nWhat is in these two images?"),
    new_markdown_cell(
        "## The Python API\n\nThe magic is a thin layer over `VisionClient`, which works in scripts too. In a "
        "notebook, `session()` gives this session's settings, its client (sharing the cache and the usage ledger) "
        "and the ledger."
    ),
    new_code_cell(
        "from azmm_magic import session\n\n"
        "client = session().client()   # the session's client and cache\n"
        "for piece in client.stream('One word for this photo?', images=[photo], detail='low'):\n"
        "    if isinstance(piece, str):\n"
        "        pass  # text as it arrives\n"
        "    else:\n"
        "        result = piece\n"
        "print(result.footer())"
    ),
    new_markdown_cell(AZURE_GUIDE),
    new_markdown_cell(
        "## Mistakes give one clear line\n\nA missing file, for example. This last cell fails on purpose (VS Code's "
        "*Run All* stops at it; everything above has run)."
    ),
    new_code_cell("%%azure_vision -i photos/does-not-exist.jpg\nWhat is this?", metadata={"tags": ["raises-exception"]}),
]

#: The lab's exercises and the measurements that answer them; the closing cell checks one against the other.
TEACHING = [
    new_markdown_cell(
        "# Lab: what a vision model sees, what it costs, and how to check it (90 minutes)\n\n"
        "For a class without Azure keys: everything here runs on a laptop or on Binder, and nothing is sent to a "
        "cloud service.\n\n"
        "**By the end of this lab you can**\n"
        "1. ask a vision model about a photo from a notebook, and continue the conversation with a follow-up;\n"
        "2. explain how an image becomes input tokens, and predict the count for `low` and `high` detail;\n"
        "3. say why a big photo is downscaled before it is sent, and check what was actually sent;\n"
        "4. estimate what a question costs before asking it, and compare two models on price;\n"
        "5. review an AI answer critically, and decide which photos may go to a cloud service at all;\n"
        "6. explain how recorded answers let a lesson run with no key and no network.\n\n"
        "| part | minutes | what you do |\n"
        "|---|---|---|\n"
        "| 0. Setup | 5 | load the extension, load the recorded answers |\n"
        "| 1. Ask about a photo | 15 | three questions to a model (replayed), then discuss its answers |\n"
        "| 2. How an image becomes tokens | 20 | exercise 1: predict, then measure on the emulator |\n"
        "| 3. Downscaling: what is actually sent | 15 | exercise 2: a 12-megapixel photo |\n"
        "| 4. What a question costs | 10 | exercise 3: gpt-4o or gpt-4o-mini? |\n"
        "| 5. Replay: how this lab runs without keys | 10 | what the recording holds; 0 requests sent |\n"
        "| 6. Check your answers | 5 | one cell checks exercises 1–3 |\n"
        "| 7. Using it responsibly, and off the script | 10 | discussion; a question nobody recorded |\n\n"
        "**How this lab works.** Parts 1 and 5 *replay* answers your instructor recorded earlier, from "
        "`teaching-answers.jsonl` beside this notebook (`cache = \"replay\"`): no key, no endpoint, no network. "
        "Parts 2–4 measure on azmm_magic's **local emulator**, a server on your own machine that counts tokens "
        "the way Azure does but is not a model. Run the cells in order."
    ),
    new_markdown_cell("## 0. Setup (5 min)"),
    new_code_cell(LOAD),
    new_code_cell(
        "RECORD = False            # instructors only: True records new answers (see the notes at the end)\n"
        "DEPLOYMENT = 'emulator'   # the deployment the answers were recorded with (e.g. 'gpt-4o' on Azure)"
    ),
    new_code_cell(
        "import json\n"
        "import os\n"
        "import tempfile\n"
        "from azmm_magic import session\n\n"
        "workdir = tempfile.mkdtemp(prefix='azmm-lab-')\n"
        "%config AzureVision.deployment = DEPLOYMENT\n"
        "%config AzureVision.cache_path = os.path.join(workdir, 'answers.sqlite')\n"
        "if RECORD:\n"
        "    # a fresh answer file; Part 1's questions are sent (and billed, on Azure) and exported after Part 1\n"
        "    %config AzureVision.cache = 'sqlite'\n"
        "    if not session().settings.endpoint:\n"
        "        %azure_vision emulator\n"
        "    print('RECORDING against', session().settings.endpoint_host, 'with deployment', DEPLOYMENT)\n"
        "else:\n"
        "    # answers only from the recording: the service is never called\n"
        "    %config AzureVision.cache = 'replay'\n"
        "    %azure_vision cache import teaching-answers.jsonl"
    ),
    new_markdown_cell(
        "Where do the recorded answers come from? The file says: each line holds a question, its answer, the "
        "deployment and model that answered, the endpoint's host name and Azure's request id (never a key)."
    ),
    new_code_cell(
        "if RECORD:\n"
        "    print('Recording: teaching-answers.jsonl is replaced after Part 1. The recording it replaces:')\n"
        "with open('teaching-answers.jsonl', encoding='utf-8') as f:\n"
        "    recorded = [json.loads(line)['entry'] for line in f if line.strip()]\n"
        "hosts = sorted({e['endpoint_host'] for e in recorded})\n"
        "models = sorted({e['model'] for e in recorded})\n"
        "local = all(h.rsplit(':', 1)[0] in ('127.0.0.1', 'localhost', '[::1]') for h in hosts)\n"
        "print(f'{len(recorded)} recorded answers; model(s): {\", \".join(models)}; recorded at: {\", \".join(hosts)}')\n"
        "if local:\n"
        "    print('Recorded against the LOCAL EMULATOR: the answers are its factual reports, not a model\\'s. '\n"
        "          'Ask your instructor for a recording made on Azure to see real answers.')\n"
        "else:\n"
        "    print('Recorded on Azure: these are a real model\\'s answers.')"
    ),
    new_markdown_cell(
        "## 1. Ask about a photo (15 min)\n\n"
        "The photo ships with matplotlib: Grace Hopper, a computing pioneer, in a 1984 portrait. `--chat lesson` "
        "starts a conversation named `lesson`: each later `--chat lesson` cell sends the earlier questions, the "
        "photo and the answers again, so the model can answer a follow-up."
    ),
    new_code_cell(
        "from matplotlib import cbook\n\n"
        "photo = str(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))"
    ),
    new_code_cell(
        "%%azure_vision -i {photo} --chat lesson -o first\n"
        "Who or what is in this photo? Describe the setting in two sentences."
    ),
    new_markdown_cell("A follow-up: no image this time, the conversation already has it."),
    new_code_cell(
        "%%azure_vision --chat lesson -o follow_up\n"
        "Judging by the clothing, roughly when was the photo taken?"
    ),
    new_code_cell(
        "%%azure_vision --chat lesson -o evidence\n"
        "Which details in the photo support your answers? Name two things that can be seen, and say which of your "
        "statements are guesses."
    ),
    new_code_cell("%azure_vision chat show lesson"),
    new_markdown_cell(
        "**Discuss (5 min): reviewing AI output.** An answer can be fluent, confident and wrong. For each statement "
        "above, ask: can I see it in the photo? Is it a guess presented as a fact (a date, an age, a name, a "
        "feeling)? What would I check, and where? Vision models misread text, miscount objects, invent details "
        "that fit the scene and guess things about people that a photo cannot show. Treat an answer as a draft "
        "to verify, never as a source. (With the emulator's recording there is nothing to debate: it only reports "
        "measurable facts. This is where a recording made on Azure earns its place.)"
    ),
    new_code_cell(
        "# instructors: save the answers recorded so far beside the notebook (students: nothing happens here)\n"
        "if RECORD:\n"
        "    %azure_vision cache export teaching-answers.jsonl\n"
        "part1 = session().ledger.totals()\n"
        "print(f'Part 1: {part1.requests} request(s) sent, {part1.cache_hits} answer(s) replayed')"
    ),
    new_markdown_cell(
        "## 2. How an image becomes tokens (20 min)\n\n"
        "A model reads an image as *tokens*, like words, and you pay for them. From here to Part 4 we measure on "
        "the local emulator.\n\n" + EMULATOR_LIMITS
    ),
    new_code_cell(
        "%config AzureVision.cache = 'memory'\n"
        "%azure_vision emulator"
    ),
    new_markdown_cell(
        "**The rule (gpt-4o family).** `--detail low`: every image costs a flat **85** tokens; the model sees it "
        "at most 512×512. `--detail high`: the image is scaled to fit 2048×2048, then its short side to 768; it "
        "is cut into 512×512 *tiles*, and costs **85 + 170 per tile**. (`auto`, the default, lets the service "
        "choose.)\n\n"
        "**Exercise 1.** The photo is 512×600 pixels. How many tiles does it need at `high`? How many image tokens "
        "is that? Write your answers below, then run the next cells to measure."
    ),
    new_code_cell(
        "my_tiles = None         # exercise 1: tiles of the 512×600 photo at detail high\n"
        "my_high_tokens = None   # exercise 1: its image tokens at detail high"
    ),
    new_markdown_cell(
        "To measure an image's tokens, ask the same question with no image, then with the image at each detail: "
        "the difference is the image."
    ),
    new_code_cell("%%azure_vision --no-stream -o text_only\nHow many people are in this photo?"),
    new_code_cell("%%azure_vision -i {photo} --detail low --no-stream -o low\nHow many people are in this photo?"),
    new_code_cell("%%azure_vision -i {photo} --detail high --no-stream -o high\nHow many people are in this photo?"),
    new_code_cell(
        "text_tokens = text_only.usage.prompt_tokens\n"
        "low_tokens = low.usage.prompt_tokens - text_tokens\n"
        "high_tokens = high.usage.prompt_tokens - text_tokens\n"
        "print(f'the question alone: {text_tokens} tokens')\n"
        "print(f'the photo at low:   {low_tokens} tokens, sent as {low.images[0].width}×{low.images[0].height}')\n"
        "print(f'the photo at high:  {high_tokens} tokens, sent as {high.images[0].width}×{high.images[0].height}')"
    ),
    new_markdown_cell(
        "Notice that `low` sent the photo at 436×512, not 512×600: what the service would shrink anyway is "
        "shrunk before the upload. Which questions need `high`? (Reading small text, counting small objects.) "
        "Which are fine at `low`? (The overall scene, the main colours.)"
    ),
    new_markdown_cell(
        "## 3. Downscaling: what is actually sent (15 min)\n\n"
        "A phone photo has 12 megapixels (4032×3024), a few megabytes. The service never looks at more than the "
        "`high` rule keeps, so azmm_magic downscales first: the same tokens, a much smaller upload.\n\n"
        "**Exercise 2.** At `--detail high`, what size (width, height) is a 4032×3024 photo sent at, and how many "
        "image tokens does it cost? (Fit in 2048×2048, then the short side to 768; then count tiles.)"
    ),
    new_code_cell(
        "my_sent_size = None     # exercise 2: (width, height) sent, e.g. (800, 600)\n"
        "my_big_tokens = None    # exercise 2: image tokens at detail high"
    ),
    new_code_cell(
        "from PIL import Image\n\n"
        "phone_photo = os.path.join(workdir, 'phone_photo.jpg')\n"
        "Image.open(photo).convert('RGB').resize((4032, 3024)).save(phone_photo, quality=92)   # a 12-MP stand-in\n"
        "print(f'{os.path.getsize(phone_photo) / 1e6:.1f} MB on disk')"
    ),
    new_code_cell("%%azure_vision -i {phone_photo} --detail high --no-stream -o big\nHow many people are in this photo?"),
    new_code_cell(
        "sent = big.images[0]\n"
        "big_tokens = big.usage.prompt_tokens - text_tokens\n"
        "print(f'original {sent.original_size}, sent {sent.width}×{sent.height}: {big_tokens} image tokens')\n"
        "print(f'upload {len(sent.data) / 1e3:.0f} kB instead of {os.path.getsize(phone_photo) / 1e3:.0f} kB;', *sent.notices)"
    ),
    new_markdown_cell(
        "## 4. What a question costs (10 min)\n\n"
        "You pay per million tokens, and input and output have different prices. The prices below are "
        "illustrative list prices in USD (gpt-4o and gpt-4o-mini, global standard, 2025); your region and "
        "contract may differ. `--dry-run` shows the estimate and the cost ceiling (the input plus the whole "
        "output-token limit) **before anything is sent**.\n\n"
        "Small models are cheaper per token, but gpt-4o-mini counts an image as about 33 times more tokens "
        "(2,833 + 5,667 per tile). `token_rule` tells azmm_magic which rule to use.\n\n"
        "**Exercise 3.** For one question about the photo at `--detail high`, which model's *input* costs less: "
        "`'gpt-4o'` or `'gpt-4o-mini'`? Guess first, then read the two dry runs. Their cost is a ceiling that also "
        "counts the whole output limit (300 tokens here): why can the ranking change once output is counted?"
    ),
    new_code_cell("my_cheaper = None        # exercise 3: 'gpt-4o' or 'gpt-4o-mini'"),
    new_code_cell(
        "PRICES = {'gpt-4o': (2.50, 10.00), 'gpt-4o-mini': (0.15, 0.60)}   # USD per 1M input / output tokens\n"
        "%config AzureVision.token_rule = 'gpt-4o'\n"
        "%config AzureVision.prices = {'*': PRICES['gpt-4o'], 'currency': 'USD'}"
    ),
    new_code_cell("%%azure_vision -i {photo} --detail high --max-tokens 300 --dry-run\nDescribe this photo."),
    new_code_cell(
        "%config AzureVision.token_rule = 'gpt-4o-mini'\n"
        "%config AzureVision.prices = {'*': PRICES['gpt-4o-mini'], 'currency': 'USD'}"
    ),
    new_code_cell("%%azure_vision -i {photo} --detail high --max-tokens 300 --dry-run\nDescribe this photo."),
    new_code_cell(
        "%config AzureVision.token_rule = 'gpt-4o'\n"
        "%config AzureVision.prices = {}\n"
        "emulator_part = session().ledger.totals()"
    ),
    new_markdown_cell(
        "Try it at `--detail low` too (copy a dry-run cell): which model wins then? And for a text-only question?"
    ),
    new_markdown_cell(
        "## 5. Replay: how this lab runs without keys (10 min)\n\n"
        "Your instructor ran Part 1 once against a deployment with `RECORD = True`. Every answer went into an "
        "answer cache, which was exported to `teaching-answers.jsonl`. With `cache = \"replay\"` a cell is answered "
        "only from that file: it matches on the question, the images (by a hash of their bytes), the options and "
        "the conversation so far, and never calls the service.\n\n"
        "The file holds questions, answers, deployment and model names, the endpoint's host name (which names "
        "the Azure resource) and Azure's request ids, but never a key. Think about that before publishing one.\n\n"
        "Back to the recording, and Part 1's first question once more, from the top of the conversation:"
    ),
    new_code_cell(
        "%config AzureVision.cache = 'replay'\n"
        "%azure_vision chat reset lesson\n"
        "%azure_vision cache list"
    ),
    new_code_cell(
        "%%azure_vision -i {photo} --chat lesson -o again\n"
        "Who or what is in this photo? Describe the setting in two sentences."
    ),
    new_code_cell(
        "replay_part = session().ledger.totals()\n"
        "print('sent:', replay_part.requests - emulator_part.requests, 'request(s); the same answer:', again.text == first.text)"
    ),
    new_markdown_cell("## 6. Check your answers (5 min)"),
    new_code_cell(
        "from math import ceil\n\n"
        "def check(name, yours, right, why):\n"
        "    if yours is None:\n"
        "        print(f'{name}: not answered yet. The answer is {right!r}: {why}')\n"
        "    elif yours == right:\n"
        "        print(f'{name}: right, {right!r}.')\n"
        "    else:\n"
        "        print(f'{name}: you said {yours!r}, measured {right!r}: {why}')\n\n"
        "tiles = ceil(high.images[0].width / 512) * ceil(high.images[0].height / 512)\n"
        "check('Exercise 1, tiles', my_tiles, tiles, '512×600 fits 2048 and has a short side under 768, so it keeps its '\n"
        "      'size: 1 tile across, 2 down')\n"
        "check('Exercise 1, tokens', my_high_tokens, high_tokens, f'85 + 170 × {tiles}')\n"
        "check('Exercise 2, size sent', my_sent_size, (sent.width, sent.height), '4032×3024 fits 2048 as 2048×1536, '\n"
        "      'then its short side goes to 768: 1024×768')\n"
        "check('Exercise 2, tokens', my_big_tokens, big_tokens, '1024×768 is 2 × 2 tiles: 85 + 170 × 4')\n"
        "from azmm_magic.core.images import estimate_image_tokens\n"
        "cost = {model: (estimate_image_tokens(512, 600, 'high', model) + text_tokens) * PRICES[model][0] / 1e6\n"
        "        for model in PRICES}\n"
        "check('Exercise 3, cheaper input', my_cheaper, min(cost, key=cost.get),\n"
        "      ', '.join(f'{m}: {c * 100:.3f} US cents' for m, c in cost.items()))\n\n"
        "replayed = sum(r.cached for r in (first, follow_up, evidence, again))\n"
        "if not RECORD:\n"
        "    assert replayed == 4 and part1.requests == 0 and replay_part.requests == emulator_part.requests\n"
        "print(f'answers replayed: {replayed}; requests sent in the replayed parts: '\n"
        "      f'{part1.requests + replay_part.requests - emulator_part.requests}')"
    ),
    new_markdown_cell(
        "## 7. Using it responsibly, and off the script (10 min)\n\n"
        "**Discuss: uploading photos to a cloud service.** A question to Azure OpenAI sends the photo to a "
        "data centre. Before a class uses real photos:\n"
        "- photos of students, or anything that identifies them (faces, name badges, school logos, screens), need "
        "consent and your institution's rules on personal data; children's data usually has stricter ones;\n"
        "- a photo can carry more than it shows: a JPEG that needs no change is sent byte for byte, with its EXIF "
        "metadata (camera, time, often GPS position);\n"
        "- Azure OpenAI does not use prompts to train models, but prompts may be kept for up to 30 days for abuse "
        "monitoring unless your organisation is exempted; the resource's region decides where data is processed;\n"
        "- for exercises, use public-domain or self-made photos, the emulator, or a recording like this one.\n\n"
        "**Off the script.** Replay never calls the service. A question nobody recorded is one clear error that "
        "names it, and no request is sent (even in record mode: the session is back on the recording). This last "
        "cell fails on purpose; VS Code's *Run All* stops here, after everything else has run."
    ),
    new_code_cell(
        "%%azure_vision -i {photo}\nA question the instructor never asked.",
        metadata={"tags": ["raises-exception"]},
    ),
    new_markdown_cell(
        "## For instructors: recording a real-Azure version\n\n"
        "The committed `teaching-answers.jsonl` was recorded against the local emulator (the setup says so when "
        "it loads). To give students a real model's answers:\n\n"
        "1. Create the resource and a vision deployment (below), and configure this kernel: "
        "`AZURE_OPENAI_ENDPOINT` and a key in `AZURE_OPENAI_API_KEY` (or `%azure_vision login`, or `az login`) "
        "before starting Jupyter, or `%config AzureVision.endpoint = ...` in a cell above the setup.\n"
        "2. In Part 0 set `RECORD = True` and `DEPLOYMENT = 'your-deployment-name'`, then run all cells. Part 1's "
        "three questions are sent to Azure (three requests, a fraction of a US cent with gpt-4o); the cell after "
        "the discussion writes `teaching-answers.jsonl` beside the notebook. Parts 2–4 run on the emulator, and "
        "Part 5 and the last cell read the recording, so nothing else is sent or billed.\n"
        "3. Read the answers (`%azure_vision chat show lesson`) before you hand them out: they are what the class "
        "will discuss.\n"
        "4. Set `RECORD = False` again, keep your `DEPLOYMENT`, and commit the notebook with "
        "`teaching-answers.jsonl`. The file contains the endpoint's host name and request ids (no key); if the "
        "host name must stay private, record through a resource you do not mind naming.\n"
        "5. Students open the notebook (Binder works) and run it: no key, no network.\n\n"
        "Change a recorded question, its options or its image and it no longer matches: record again. Use image "
        "files for recorded questions (a re-drawn chart can differ by a pixel between library versions).\n\n"
        + AZURE_GUIDE.replace("## Going to real Azure", "### Going to real Azure")
        .replace("Run this notebook's setup cell again: it keeps those settings and does not start the emulator.",
                 "With `RECORD = True` the setup keeps those settings and starts the emulator only when no endpoint "
                 "is configured.")
    ),
]

EXPLORE = [
    new_markdown_cell(
        "# Explore a chart with a vision model\n\n"
        "Make a matplotlib chart, ask about it, continue the conversation, and get structured data back as a plain "
        "Python dict (20 minutes). Without Azure settings the notebook uses the local emulator (its answers are "
        "factual reports, not a model's)."
    ),
    new_code_cell(LOAD),
    new_code_cell(SETUP),
    new_code_cell(
        "%matplotlib inline\n"
        "import csv\n"
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
    new_markdown_cell(EMULATOR_LIMITS),
    new_markdown_cell(
        "## What it cost\n\nEvery call is counted per deployment, cached or not. With a price table (illustrative "
        "numbers here, per 1M input / output tokens) the ledger estimates the cost, and `--dry-run` shows the "
        "estimate before sending."
    ),
    new_code_cell(
        "from azmm_magic import session\n\n"
        "deployment = session().settings.deployment\n"
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
        "`%%azure_vision` cell. Without Azure settings this notebook uses the local emulator (not a model). "
        "(10 minutes.)"
    ),
    new_code_cell(LOAD),
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
        "# From a folder of product photos to a table (30 minutes)\n\n"
        "You have a catalogue (SKU, title, photo file name) and a folder of photos, say 5,000 of them, and want a "
        "table: a few facts about each product read from its photo, next to its SKU. The whole path:\n\n"
        "1. the catalogue and the photos;\n"
        "2. what to ask, as a JSON schema (`--schema`), so every answer has the same fields;\n"
        "3. a SQLite answer cache, so an interrupt or a kernel restart keeps every answer already paid for;\n"
        "4. a cost check on 10 photos first;\n"
        "5. the whole folder with `--each` (one request per photo, sent concurrently, failures recorded);\n"
        "6. `to_records()` → `pandas.json_normalize` → a join on the file name → Parquet or CSV;\n"
        "7. the Azure OpenAI Batch API for the full run (half the price, within 24 hours).\n\n"
        "Without Azure settings this notebook runs against the local emulator (see the box in step 4 for what it "
        "can and cannot show). It needs pandas (`pip install \"azmm_magic[notebooks]\"`; Binder has it)."
    ),
    new_code_cell(LOAD),
    new_code_cell(SETUP),
    new_markdown_cell(
        "## 1. The catalogue and the photos\n\n"
        "Here 60 generated product photos (a coloured mug or box on white) and a matching catalogue. For your own: "
        "`PHOTOS = Path('...')` and `catalogue = pd.read_csv('catalogue.csv')` with a column of file names."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import pandas as pd\n"
        "from PIL import Image, ImageDraw\n\n"
        "work = Path(tempfile.mkdtemp(prefix='azmm-catalogue-'))\n"
        "PHOTOS = work / 'photos'\n"
        "PHOTOS.mkdir()\n"
        "colours = ['crimson', 'orange', 'gold', 'seagreen', 'steelblue', 'purple']\n"
        "rows = []\n"
        "for i in range(60):\n"
        "    colour, kind = colours[i % 6], ('mug', 'box')[i // 6 % 2]\n"
        "    img = Image.new('RGB', (640, 480), 'white')\n"
        "    box = (200 + 2 * i, 120, 440 + 2 * i, 360)   # every photo differs a little\n"
        "    (ImageDraw.Draw(img).ellipse if kind == 'mug' else ImageDraw.Draw(img).rectangle)(box, fill=colour)\n"
        "    file = f'IMG_{1000 + i}.jpg'\n"
        "    img.save(PHOTOS / file, quality=90)\n"
        "    rows.append({'sku': f'SKU-{i:04d}', 'title': f'{colour} {kind}', 'file': file})\n"
        "catalogue = pd.DataFrame(rows)\n"
        "catalogue.head()"
    ),
    new_markdown_cell(
        "## 2. What to ask: a schema\n\n"
        "`--schema NAME` takes a JSON Schema dict (or a pydantic model) from the notebook and asks for structured "
        "output: every answer is JSON with these fields, checked against the schema; `result.parsed` is a dict."
    ),
    new_code_cell(
        "product_facts = {\n"
        "    'type': 'object',\n"
        "    'properties': {\n"
        "        'main_colour': {'type': 'string'},\n"
        "        'object': {'enum': ['mug', 'box', 'bottle', 'other']},\n"
        "        'background': {'enum': ['white', 'coloured', 'scene']},\n"
        "        'label': {'type': 'object', 'properties': {'text': {'type': 'string'}, 'legible': {'type': 'boolean'}}},\n"
        "        'defects': {'type': 'array', 'items': {'type': 'string'}},\n"
        "    },\n"
        "}"
    ),
    new_markdown_cell(
        "## 3. A persistent answer cache\n\n"
        "With `cache = 'sqlite'` every answer is written to a file as it arrives. After an interrupt (the stop "
        "button) or a kernel restart, the same cell sends only the photos that have no answer yet. Use a fixed path "
        "in your project (here a scratch folder, so the demo starts empty)."
    ),
    new_code_cell(
        "cache_file = work / 'answers.sqlite'   # in your project: e.g. 'catalogue-answers.sqlite'\n"
        "%config AzureVision.cache = 'sqlite'\n"
        "%config AzureVision.cache_path = str(cache_file)"
    ),
    new_markdown_cell(
        "## 4. A cost check on 10 photos\n\n"
        "First the estimate (`--dry-run`: nothing is sent), then the 10 photos for real: look at the answers and "
        "the measured tokens before paying for the rest. Prices: illustrative gpt-4o list prices in USD per million "
        "input / output tokens; put yours (see the Azure pricing page for your region and deployment type). "
        "`--detail low` is a flat 85 tokens per photo; use `high` only if the answers need small details."
    ),
    new_code_cell(
        "PRICE_IN, PRICE_OUT = 2.50, 10.00\n"
        "%config AzureVision.prices = {'*': (PRICE_IN, PRICE_OUT)}\n"
        "first_ten = [str(PHOTOS / f) for f in catalogue.file[:10]]"
    ),
    new_code_cell(
        "%%azure_vision -i first_ten --each --schema product_facts --detail low --dry-run\n"
        "This is a product photo from an online shop's catalogue. Fill in every field; defects is an empty list "
        "when you see none."
    ),
    new_code_cell(
        "%%azure_vision -i first_ten --each --schema product_facts --detail low -o sample\n"
        "This is a product photo from an online shop's catalogue. Fill in every field; defects is an empty list "
        "when you see none."
    ),
    new_code_cell(
        "measured = sample.to_dataframe()\n"
        "per_photo = (measured.prompt_tokens.mean() * PRICE_IN + measured.completion_tokens.mean() * PRICE_OUT) / 1e6\n"
        "print(f'{per_photo * 100:.3f} US cents a photo: {per_photo * len(catalogue):.3f} USD for this catalogue, '\n"
        "      f'{per_photo * 5000:.2f} USD for 5,000 photos (half that with the Batch API)')\n"
        "sample.results[0].parsed"
    ),
    new_markdown_cell(
        EMULATOR_LIMITS + "\nHere, on the emulator, every `main_colour` is `white` (the background covers most of "
        "the photo) and `label.text` is a placeholder. The token counts, and so the cost estimate, are the real part."
    ),
    new_markdown_cell(
        "## 5. The whole folder\n\n"
        "`-i {pattern} --each`: one request per photo, at most `concurrency` at a time (the window adapts when the "
        "service answers 429), with a progress bar and a gallery that fills in. A broken file joins the folder: "
        "its failure is recorded and nothing stops. The 10 photos of the cost check come from the cache."
    ),
    new_code_cell(
        "(PHOTOS / 'IMG_9999.jpg').write_bytes(b'not a JPEG: a failed upload')\n"
        "pattern = str(PHOTOS / '*.jpg')"
    ),
    new_code_cell(
        "%%azure_vision -i {pattern} --each --schema product_facts --detail low -o results\n"
        "This is a product photo from an online shop's catalogue. Fill in every field; defects is an empty list "
        "when you see none."
    ),
    new_code_cell(
        "print(results.summary())\n"
        "assert results.counts()['cached'] == 10 and len(results.failures) == 1\n"
        "print(results.failures[0])"
    ),
    new_markdown_cell(
        "## 6. Into a table\n\n"
        "`to_records()` gives one dict per photo (source, status, tokens, error, and `parsed`, the answer's fields). "
        "`pandas.json_normalize` turns the nested fields into columns (`label.text`, `label.legible`), and a join "
        "on the file name puts them next to each SKU."
    ),
    new_code_cell(
        "answers = pd.json_normalize(results.to_records())\n"
        "answers['file'] = answers['source'].map(lambda s: Path(s).name)\n"
        "answers = answers.rename(columns=lambda c: c.removeprefix('parsed.'))\n"
        "fields = ['main_colour', 'object', 'background', 'label.text', 'label.legible', 'defects']\n"
        "answers = answers[['file', 'status', 'error', 'prompt_tokens', 'completion_tokens', *fields]]\n\n"
        "table = catalogue.merge(answers, on='file', how='left', validate='one_to_one')\n"
        "print('photos with no catalogue row:', sorted(set(answers.file) - set(catalogue.file)))\n"
        "print('catalogue rows with no answer:', int(table.main_colour.isna().sum()))\n"
        "table.head()"
    ),
    new_markdown_cell("Save it: Parquet when pyarrow is installed (it keeps the types), else CSV."),
    new_code_cell(
        "table['defects'] = table['defects'].map(lambda d: '; '.join(d) if isinstance(d, list) else '')\n"
        "try:\n"
        "    import pyarrow  # noqa: F401\n"
        "    saved = work / 'catalogue-facts.parquet'\n"
        "    table.to_parquet(saved, index=False)\n"
        "except ImportError:\n"
        "    saved = work / 'catalogue-facts.csv'\n"
        "    table.to_csv(saved, index=False)\n"
        "print('saved', saved.name, f'({len(table)} rows)')"
    ),
    new_markdown_cell(
        "**A DataFrame instead of a folder.** `-i catalogue --column path --each` asks once per row and fills "
        "`{title}` and `{sku}` in the prompt from the row; `to_dataframe()` returns the rows with the answer's "
        "fields added, so no join is needed. (A new prompt is a new request: 12 rows here.)"
    ),
    new_code_cell("rows12 = catalogue.head(12).assign(path=[str(PHOTOS / f) for f in catalogue.file[:12]])"),
    new_code_cell(
        "%%azure_vision -i rows12 --column path --each --schema product_facts --detail low -o by_row\n"
        "The catalogue calls this product \"{title}\" (SKU {sku}). Fill in every field from the photo."
    ),
    new_code_cell("by_row.to_dataframe()[['sku', 'title', 'main_colour', 'object', 'cached', 'prompt_tokens']].head()"),
    new_markdown_cell(
        "## 7. 5,000 photos: the Azure OpenAI Batch API\n\n"
        "For the full run, `--via batch-api` writes the requests as JSONL, uploads them and creates a Batch API "
        "job: half the price, done within 24 hours, and no rate limits to wait out in the notebook. It needs a "
        "*Global Batch* deployment (`--deployment NAME` of that deployment). `%azure_vision jobs` lists jobs; "
        "`jobs results ID` downloads the answers (in a later session too), fills the cache and returns the same "
        "`BatchResult`, so step 6 works unchanged. The emulator finishes a job in seconds."
    ),
    new_code_cell(
        "%%azure_vision -i {pattern} --via batch-api --schema product_facts --detail low -o job\n"
        "This is a product photo from an online shop's catalogue. Fill in every field; defects is an empty list "
        "when you see none."
    ),
    new_code_cell("%azure_vision jobs"),
    new_code_cell(
        "from azmm_magic import session\n\n"
        "if session().uses_emulator:   # seconds; on Azure poll with job.wait() (once a minute) or come back later\n"
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
        "against the local emulator (its answers are factual reports about what it received, not a model). "
        "(20 minutes.)"
    ),
    new_code_cell(LOAD),
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
        "## A phone photo (HEIC)\n\niPhones save photos as HEIC (`IMG_0001.HEIC`). azmm_magic opens them with "
        "pillow-heif (installed with it) like any JPEG: turned upright, downscaled to what the detail keeps, and sent "
        "as JPEG (the service does not take HEIC). Here a HEIC file is written from matplotlib's sample photo."
    ),
    new_code_cell(
        "from PIL import Image\n"
        "from pillow_heif import register_heif_opener\n\n"
        "register_heif_opener()   # lets Pillow write HEIC here; azmm_magic reads HEIC without this line\n"
        "phone = str(work / 'IMG_0001.HEIC')\n"
        "Image.open(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)).save(phone, quality=80)\n"
        "print(phone, f'{Path(phone).stat().st_size / 1e3:.0f} kB')"
    ),
    new_code_cell('%%azure_vision -i {phone} --detail low --no-stream -o heic_answer\nWhat is in this photo?'),
    new_code_cell("sent = heic_answer.images[0]\nsent.media_type, f'{sent.width}x{sent.height}', sent.notices"),
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
        "from azmm_magic import session\n\n"
        "client = session().client()   # the session's client: same settings, cache and usage ledger\n"
        "same = client.batch('Is there a {label} on a {colour} background?', df, column='path', detail='low', "
        "progress=False)\n"
        "print(same.summary())\n"
        "assert all(r.cached for r in same.results)   # the same requests as the cell above: answered from the cache"
    ),
]

EVALUATE = [
    new_markdown_cell(
        "# Is this model good enough for my images? (20 minutes)\n\n"
        "Before you rely on a vision model's answers, score it on images whose right answer you know. This "
        "notebook walks the whole decision:\n\n"
        "1. a labelled set (here generated: 30 colour swatches, with a few labels deliberately wrong, as real "
        "labels are);\n"
        "2. ask with a schema, so every answer is one of the labels;\n"
        "3. score one deployment: `--expect COLUMN` under `--each`;\n"
        "4. read the evaluation: the headline and its interval, the per-class table, the confusion matrix, the "
        "mistakes;\n"
        "5. compare two deployments on the same rows: accuracy, cost, latency, and whether the difference is more "
        "than chance;\n"
        "6. compare two prompts (Python API);\n"
        "7. decide; and what changes on real Azure.\n\n"
        "Without Azure settings it runs against the local emulator, which reads the colour from the pixels (and "
        "says so), so the scores are real scores of a very simple reader. It needs pandas "
        "(`pip install \"azmm_magic[notebooks]\"`; Binder and Colab have it)."
    ),
    new_code_cell(LOAD),
    new_code_cell(SETUP),
    new_markdown_cell(
        "## 1. A labelled set\n\n"
        "A DataFrame with an image column and a label column. The swatches come in three shades per colour; the "
        "blues include (30, 144, 255) and (30, 120, 200), which people call blue. Three labels are wrong on "
        "purpose: a labelling slip is exactly what an evaluation should bring to light. For your own data: a "
        "column of file paths or URLs and a column of labels (`pd.read_csv('labels.csv')`)."
    ),
    new_code_cell(
        "import pandas as pd\n"
        "from PIL import Image\n\n"
        "shades = {\n"
        "    'red': [(220, 30, 30), (180, 40, 50), (240, 80, 60)],\n"
        "    'green': [(30, 160, 60), (60, 190, 90), (20, 120, 40)],\n"
        "    'blue': [(30, 144, 255), (30, 120, 200), (60, 90, 220)],\n"
        "}\n"
        "rows = []\n"
        "for i in range(30):\n"
        "    colour = list(shades)[i // 10]\n"
        "    rgb = shades[colour][i % 3]\n"
        "    rows.append({'image': Image.new('RGB', (96 + 2 * i, 72), rgb), 'label': colour})\n"
        "df = pd.DataFrame(rows, index=[f's{i:02d}' for i in range(30)])\n"
        "df.loc[['s03', 's14', 's25'], 'label'] = ['green', 'blue', 'red']   # three labelling slips\n"
        "df['label'].value_counts()"
    ),
    new_markdown_cell(
        "## 2. Ask with a schema\n\n"
        "A free-text answer (\"a vivid crimson square\") is hard to score. A JSON schema whose field is an enum of "
        "the labels makes every answer one of them (`--schema`, structured outputs)."
    ),
    new_code_cell(
        "swatch = {\n"
        "    'type': 'object',\n"
        "    'properties': {'colour': {'enum': ['red', 'green', 'blue']}},\n"
        "    'required': ['colour'],\n"
        "    'additionalProperties': False,\n"
        "}\n"
        "%config AzureVision.prices = {'*': (2.50, 10.00)}   # illustrative USD per 1M input / output tokens: put yours"
    ),
    new_markdown_cell(
        "## 3. Score one deployment\n\n"
        "`--expect label=colour` compares each answer's `colour` field with the row's `label` and shows the "
        "evaluation under the gallery (`--expect label` alone compares the field named like the column, or the "
        "answer text). `-o run` keeps the `BatchResult`; the evaluation is the cell's value."
    ),
    new_code_cell(
        "%%azure_vision -i df --each --schema swatch --detail low --expect label=colour -o run\n"
        "Which colour is this swatch?"
    ),
    new_markdown_cell(
        "## 4. Read the evaluation\n\n"
        "- **The headline** says how many answers were right *and out of how many*: 27/30 is 90 %, but with 30 rows "
        "the 95 % confidence interval (Wilson) runs from about 74 % to 97 %. More rows narrow it; roughly, the "
        "interval's half-width is 1/√n (±18 points at 30 rows, ±6 at 300).\n"
        "- **Failures** (no answer: an error, a timeout) are counted apart, never as wrong answers; a row without a "
        "label is not scored.\n"
        "- **Per class**: recall (of the rows labelled red, how many were answered red) and precision (of the "
        "answers red, how many were labelled red).\n"
        "- **The confusion matrix**: rows are the labels, columns the answers; the diagonal is right, every other "
        "cell (framed in red) is a kind of mistake.\n"
        "- **The mistakes gallery**: look at the images. Here every mistake is a wrong *label*: the answer is right. "
        "That is common in real labelled sets, and worth fixing before you judge a model.\n\n"
        "The same numbers in Python, for your own charts and reports (DataFrames):"
    ),
    new_code_cell(
        "ev = run.evaluate('label', field='colour')\n"
        "print(ev.headline())\n"
        "ev.confusion"
    ),
    new_code_cell("ev.per_class"),
    new_code_cell("ev.mistakes[['label', 'expected', 'answer']]"),
    new_markdown_cell(
        "Fix the three labels and score again: no request is sent, the answers are the same `BatchResult`."
    ),
    new_code_cell(
        "df.loc[['s03', 's14', 's25'], 'label'] = ['red', 'green', 'blue']\n"
        "print(run.evaluate(df['label'], field='colour').headline())"
    ),
    new_markdown_cell(
        "## 5. Compare two deployments on the same rows\n\n"
        "With `--deployment a,b`, every deployment answers every row and the output is a side-by-side table: "
        "accuracy with its interval, cost per 1,000 images and per correct answer, median latency, failures. Below "
        "it, McNemar's test on the *paired* answers says whether the difference is more than chance: it looks "
        "only at the rows where one was right and the other wrong. Put two of your deployments here (on Azure, "
        "e.g. a gpt-4o and a gpt-4o-mini deployment). The cache makes a re-run of the same rows free.\n\n"
        "On the emulator both \"deployments\" read the same pixels, so they agree on every row (p = 1): that is "
        "the honest result for two identical readers."
    ),
    new_code_cell(
        "FIRST = session().settings.deployment\n"
        "SECOND = 'gpt-4o-mini' if session().uses_emulator else FIRST   # on Azure: the name of another deployment"
    ),
    new_code_cell(
        "%%azure_vision -i df --each --schema swatch --detail low --expect label=colour --deployment {FIRST},{SECOND} -o side\n"
        "Which colour is this swatch?"
    ),
    new_code_cell("side.to_dataframe()[['accuracy', 'ci_low', 'ci_high', 'cost_per_1000', 'median_latency']]"),
    new_markdown_cell(
        "## 6. Compare two prompts (Python API)\n\n"
        "`client.evaluate([...variants...], df, truth=...)` runs one batch per variant on the same rows. A variant "
        "is a prompt, or a dict of what differs (`prompt`, `deployment`, `detail`, `system`, `response_format`, "
        "`name`). Here two free-text prompts, scored with `match='contains'` (the answer contains the label as a "
        "word); `match='number'` compares numbers, or pass your own `match(answer, truth)` function."
    ),
    new_code_cell(
        "client = session().client()\n"
        "prompts = client.evaluate(\n"
        "    [{'name': 'one word', 'prompt': 'Name the colour of this swatch in one word.'},\n"
        "     {'name': 'describe', 'prompt': 'Describe this image.'}],\n"
        "    df, truth='label', match='contains', detail='low', prices={'*': (2.50, 10.00)},\n"
        ")\n"
        "prompts"
    ),
    new_markdown_cell(
        "## 7. Decide\n\n"
        "- Is the **lower end of the interval** good enough for the job? If not, you need a better model, a better "
        "prompt, or more rows to know.\n"
        "- Is a cheaper deployment's lower accuracy **more than chance** (McNemar p < 0.05)? If not, the cheaper one "
        "may do, or you need more rows to tell.\n"
        "- Compare **cost per correct answer**, not only cost per image: a cheap model that is often wrong can cost "
        "more per useful answer.\n"
        "- **Read the mistakes**, not only the rate: some are the labels' fault, some tell you what the prompt "
        "should say.\n\n"
        "## What changes on real Azure\n\n"
        "Run the setup cell with your endpoint and deployment (see the quickstart): the answers are then the "
        "model's, and so are the mistakes. The emulator is not a model: it fills the schema fields that can be read "
        "from pixels (a colour among the enum's names, light/dark, portrait/landscape, a count of solid blobs; its "
        "`x-emulator-note` header says which) and puts placeholders everywhere else, so on anything but such "
        "fields its score means nothing. Token counts, costs from your price table, caching, failures and the "
        "statistics work the same. Use a labelled set drawn from your real images, a few hundred rows if you can, "
        "and keep it: re-scoring after a prompt change costs only the new prompt's requests."
    ),
]


def hosted_ready(name: str, cells: list) -> list:
    """``cells`` as shipped: an "Open in Colab" link in the first Markdown cell and the install-where-missing lines
    above ``%load_ext`` in the first code cell."""
    cells = [nbformat.from_dict(dict(c)) for c in cells]
    first_md = next(c for c in cells if c.cell_type == "markdown")
    first_md.source += f"\n\n[Open in Colab]({colab_url(name)}) · runs here with no key, on the bundled emulator"
    first_code = next(c for c in cells if c.cell_type == "code")
    assert first_code.source.startswith(LOAD), f"{name}: the first code cell loads the extension"
    first_code.source = INSTALL.format(extra=EXTRAS.get(name, "")) + first_code.source
    return cells


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=hosted_ready(name, cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    ROOT.mkdir(exist_ok=True)
    path = ROOT / name
    if path.exists():  # keep the cell ids of the notebook written before (a rebuild then changes only what changed)
        old = nbformat.read(path, as_version=4).cells
        if len(old) == len(nb.cells):
            for cell, before in zip(nb.cells, old, strict=True):
                cell.id = before.get("id", cell.id)
    nbformat.write(nb, path)
    return path


NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "teaching.ipynb": TEACHING,
    "explore.ipynb": EXPLORE,
    "panel.ipynb": PANEL,
    "batch.ipynb": BATCH,
    "documents.ipynb": DOCUMENTS,
    "evaluate.ipynb": EVALUATE,
}

#: The label the executed quickstart opens with (tests/test_notebooks.py checks it is there).
EXECUTED_LABEL = (
    "> **Executed against the local emulator, not a model.** This is `notebooks/quickstart.ipynb` run by "
    "`python scripts/build_notebooks.py --executed` with no Azure settings: every answer below is the bundled "
    "emulator's factual report about the images it received. Token counts, image sizes and the request bodies are "
    "what Azure would get. Run the notebook with your own deployment to see a model's answers."
)


def _azure_settings() -> list[str]:
    """The environment variables that could point a run at a real service (the executed copy must use the emulator)."""
    return [k for k in os.environ if k.startswith(("AZURE_OPENAI_", "OPENAI_", "AZMM_"))]


def build_executed() -> tuple[Path, Path]:
    """Execute the quickstart against the emulator; write docs/quickstart.ipynb and docs/quickstart.html."""
    from azmm_magic.frontends.demo import execute_notebook

    saved = {k: os.environ.pop(k) for k in _azure_settings()}  # the kernel inherits this environment
    try:
        with tempfile.TemporaryDirectory(prefix="azmm-executed-") as scratch:
            nb = nbformat.read(ROOT / "quickstart.ipynb", as_version=4)
            nb.cells.insert(0, new_markdown_cell(EXECUTED_LABEL))
            source = Path(scratch) / "quickstart.ipynb"
            nbformat.write(nb, source)
            ipynb, html = execute_notebook(source, Path(scratch) / "out", timeout=300)
            DOCS.mkdir(exist_ok=True)
            shutil.copy2(ipynb, DOCS / "quickstart.ipynb")
            shutil.copy2(html, DOCS / "quickstart.html")
    finally:
        os.environ.update(saved)
    return DOCS / "quickstart.ipynb", DOCS / "quickstart.html"


def record_teaching() -> Path:
    """Run teaching.ipynb with RECORD = True (Azure when this environment configures it, else the emulator) and
    copy the teaching-answers.jsonl it exports into notebooks/."""
    from azmm_magic.frontends.demo import execute_notebook

    nb = nbformat.read(ROOT / "teaching.ipynb", as_version=4)
    (switch,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("RECORD = False")]
    switch.source = switch.source.replace("RECORD = False", "RECORD = True", 1)
    with tempfile.TemporaryDirectory(prefix="azmm-record-") as scratch:
        shutil.copy2(ROOT / "teaching-answers.jsonl", scratch)  # the provenance cell reads the old one
        source = Path(scratch) / "teaching.ipynb"
        nbformat.write(nb, source)
        execute_notebook(source, Path(scratch) / "out", timeout=300)
        shutil.copy2(Path(scratch) / "teaching-answers.jsonl", ROOT / "teaching-answers.jsonl")
    return ROOT / "teaching-answers.jsonl"


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--executed"]:
        for path in build_executed():
            print(path)
    elif args == ["--record-teaching"]:
        print(record_teaching())
    else:
        for name in args or NOTEBOOKS:
            print(write(name, NOTEBOOKS[name]))
