"""Check an install against a hosted runtime's pins (tests/envs/NAME.txt): nothing the runtime has may move.

    python tests/envs/check.py tests/envs/colab.txt --report pip-report.json   # a `pip install --dry-run --report`
    python tests/envs/check.py tests/envs/colab.txt --installed                # what this Python has now

Exit 0 with one line saying what would be added; exit 1 naming each pinned package that would be upgraded or
downgraded (or is no longer at its pin).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line)
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def moved_by_report(pins: dict[str, str], report: dict) -> tuple[list[str], list[str]]:
    """(pinned packages the install would change, packages it would add)."""
    moved, added = [], []
    for item in report.get("install", []):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        pinned = pins.get(canonical(name))
        if pinned is None:
            added.append(f"{name} {version}")
        elif pinned != version:
            moved.append(f"{name} {pinned} -> {version}")
        elif not item.get("is_direct"):
            moved.append(f"{name} {version} (reinstalled)")
    return moved, added


def moved_installed(pins: dict[str, str]) -> list[str]:
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return [f"{name} {want} -> {installed.get(name, 'missing')}" for name, want in sorted(pins.items())
            if installed.get(name) != want]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", type=Path)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--report", type=Path, help="the JSON of `pip install --dry-run --report`")
    group.add_argument("--installed", action="store_true", help="check this interpreter's installed packages")
    args = parser.parse_args(argv)
    pins = read_pins(args.spec)
    name = args.spec.stem
    if args.installed:
        moved = moved_installed(pins)
        if moved:
            print(f"{name}: {len(moved)} runtime package(s) no longer at the runtime's version: {'; '.join(moved)}")
            return 1
        print(f"{name}: all {len(pins)} runtime packages at the runtime's versions")
        return 0
    moved, added = moved_by_report(pins, json.loads(args.report.read_text(encoding="utf-8")))
    if moved:
        print(f"{name}: installing azmm_magic would move {len(moved)} runtime package(s): {'; '.join(moved)}")
        return 1
    print(f"{name}: installing azmm_magic moves nothing of the runtime's {len(pins)} pins; it adds {len(added)}: "
          f"{', '.join(added)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
