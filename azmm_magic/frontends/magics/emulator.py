"""``%azure_vision emulator [stop|status]``: the local Azure-compatible emulator, and this session pointed at it."""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.frontends.command import LineParser
from azmm_magic.frontends.magics.subcommand import Session, Subcommand


def arguments(parser: LineParser) -> None:
    parser.add_argument("action", nargs="?", default="start", choices=("start", "status", "stop"))


def run(magics: Session, args: argparse.Namespace) -> Any:
    if args.action == "stop":
        stopped = shutdown_emulator(magics)
        print("Emulator stopped." if stopped else "No emulator was running.")
        return None
    if magics.emulator is None:
        if args.action == "status":
            print("No emulator is running; start one with %azure_vision emulator.")
            return None
        from azmm_magic.emulator.server import EmulatorConfig, EmulatorServer

        # on the port it had before, when it is free: what still points there (a job handle) finds it again
        for port in dict.fromkeys((magics.emulator_port, 0)):
            magics.emulator = EmulatorServer(EmulatorConfig(), port=port)
            try:
                magics.emulator.start()
                break
            except OSError:
                magics.emulator = None
                if not port:
                    raise
        assert magics.emulator is not None
        magics.emulator_port = int(magics.emulator.url.rsplit(":", 1)[1])
    magics.endpoint = magics.emulator.url
    magics.auth = "none"
    magics.api_style = "azure"
    if not magics.deployment:
        magics.deployment = "emulator"
    for name in ("endpoint", "auth", "api_style", "deployment"):
        if name != "deployment" or magics.deployment == "emulator":
            magics.set_by[name] = (getattr(magics, name), "%azure_vision emulator")
    starter = getattr(magics, "start_warmup", None)
    if starter is not None:
        starter()  # the session's settings changed: build the client for them in the background
    from azmm_magic.emulator.models import profile_for

    served = profile_for(magics.emulator.config, magics.deployment).model
    print(
        f"Azure OpenAI emulator (local, not a model) running at {magics.emulator.url}; this session now uses it "
        f"with deployment '{magics.deployment}' (answered as {served}); %azure_vision emulator stop stops it."
    )
    return None


def warm_emulator() -> None:
    """The in-process emulator's own first-request work (its request checks import jsonschema and build the
    validator, its report imports numpy and decodes the image), done by the background warm-up on a tiny
    request body instead of during the session's first cell. Nothing is sent."""
    import base64
    import io

    from PIL import Image

    from azmm_magic.emulator.report import read_chat
    from azmm_magic.emulator.validation import check_schema

    png = io.BytesIO()
    Image.new("RGB", (8, 6), (120, 80, 40)).save(png, "PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
    body = {"model": "warm-up", "max_completion_tokens": 16, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "warm-up"}, {"type": "image_url", "image_url": {"url": url}}]}]}
    check_schema(body)
    read_chat(body)


def shutdown_emulator(magics: Session) -> bool:
    """Stop the session's emulator (if any) and forget the settings that pointed at it."""
    if magics.emulator is None:
        return False
    url = magics.emulator.url
    magics.close_clients()  # no kept-alive connection left for the server to wait for at shutdown
    magics.emulator.stop()
    magics.emulator = None
    if magics.endpoint == url:
        magics.endpoint = None
        magics.auth = None
        magics.api_style = None
        if magics.deployment == "emulator" and magics.set_by.get("deployment", (None, ""))[1] == "%azure_vision emulator":
            magics.deployment = None  # the placeholder name it set is no deployment anywhere else
    return True


EMULATOR = Subcommand(
    "emulator", ("emulator [stop|status]",),
    "start the local Azure-compatible emulator and point this session at it", run, arguments,
)
