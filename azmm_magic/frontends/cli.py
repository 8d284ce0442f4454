"""The ``azmm`` command: ``azmm demo``, ``azmm emulator``."""

from __future__ import annotations

import argparse
import sys


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
        from azmm_magic.frontends.demo import run_demo

        try:
            return run_demo(args.out, args.notebook)
        except Exception as e:  # a failing cell: say which, without a wall of traceback
            last = str(e).strip().splitlines()[-1] if str(e).strip() else ""
            print(label(f"azmm demo failed: {type(e).__name__}: {last}"), file=sys.stderr)
            return 1
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
