"""Which Chromium the browser tests drive, the same rule as scripts/install-browser.sh: Debian's
/usr/bin/chromium where there is apt-get (CI here; a missing one fails the test), Playwright's own Chromium
(`python -m playwright install chromium`) where there is not (macOS, Fedora, ...). Nothing skips."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def debian_chromium() -> bool:
    """True where the tests must use Debian's Chromium (apt-get is there to install it)."""
    return shutil.which("apt-get") is not None


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a ``sync_playwright()`` handle."""
    if debian_chromium():
        assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/install-browser.sh"
        return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    return playwright.chromium.launch(args=CHROMIUM_ARGS, headless=True)
