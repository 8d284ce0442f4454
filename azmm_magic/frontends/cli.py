"""The ``azmm`` command: ``azmm demo``, ``azmm emulator``."""

from __future__ import annotations

import argparse
import re
import sys

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_line(error: BaseException) -> str:
    """The last line of a failing cell's report, without terminal colour codes; a missing module names the
    ``notebooks`` extra."""
    text = _ANSI.sub("", str(error)).strip()
    last = text.splitlines()[-1].strip() if text else ""
    line = f"{type(error).__name__}: {last}" if last else type(error).__name__
    if "ModuleNotFoundError" in text:
        line += " (the batch and documents notebooks need the notebooks extra: pip install 'azmm_magic[notebooks]')"
    return line


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``azmm`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["emulator"]:
        from azmm_magic.emulator.__main__ import main as emulator_main

        return emulator_main(argv[1:])
    parser = argparse.ArgumentParser(prog="azmm", description="azmm_magic: Azure OpenAI vision from Jupyter.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="execute a shipped notebook (quickstart by default) and write it as .ipynb and .html")
    demo.add_argument("--out", default="demo-output", help="folder for the executed notebook (default: demo-output)")
    demo.add_argument("--notebook", default="quickstart.ipynb",
                      help="a shipped notebook: quickstart, teaching, explore, panel or batch (default: quickstart)")
    sub.add_parser("emulator", help="run the local Azure-OpenAI-compatible emulator (see `azmm emulator --help`)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from azmm_magic.display.untrusted import label
        from azmm_magic.frontends.demo import DemoError, run_demo

        try:
            return run_demo(args.out, args.notebook)
        except (DemoError, FileNotFoundError) as e:
            print(f"azmm demo: {e}", file=sys.stderr)
            return 1
        except Exception as e:  # a failing cell: say which, without a wall of traceback
            print(label(f"azmm demo failed: {failure_line(e)}"), file=sys.stderr)
            return 1
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
