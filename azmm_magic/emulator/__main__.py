"""``python -m azmm_magic.emulator``: serve the emulator in the foreground (Ctrl-C stops it).

The first line printed is exactly ``Listening on http://HOST:PORT`` (flushed), so a parent process can read
the URL; ``--port 0`` picks a free port. The API key may come from ``AZMM_EMULATOR_API_KEY`` instead of the
command line (and a bearer token from ``AZMM_EMULATOR_BEARER_TOKEN``).
"""

from __future__ import annotations

import argparse
import os
import sys

from .app import EmulatorConfig, create_app
from .server import bind_socket, url_for

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (shared with the ``azmm emulator`` subcommand)."""
    parser = argparse.ArgumentParser(
        prog="python -m azmm_magic.emulator",
        description="A local Azure-OpenAI-compatible server that answers with facts about what it received.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port; 0 picks a free one (default: 8765)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this api-key (default: $AZMM_EMULATOR_API_KEY; unset means no auth is required)",
    )
    parser.add_argument(
        "--deployments",
        default=None,
        help="comma-separated deployments that exist, each NAME or NAME=MODEL-VERSION, e.g. "
        "gpt-4o=gpt-4o-2024-11-20,o4mini=o4-mini-2025-04-16 (the model decides the rules and the answers' "
        "'model'; a bare model name means its current default version; default: any name is accepted)",
    )
    parser.add_argument("--default-model", default=None, metavar="MODEL-VERSION",
                        help="the model a deployment whose name names no model is served as (default: "
                        "gpt-4o-2024-11-20; see docs/emulator-models.md)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument(
        "--stream-chunk-delay", type=float, default=0.0, help="seconds between streamed chunks (default: 0)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="DEPLOYMENT=KIND[:ARG][:times=N]",
        help="inject a fault for a deployment ('*' = all), e.g. vision=429:1:times=2, '*=cut:3'; repeatable. "
        "Kinds: 429 500 503 408 latency hang drop cut content_filter content_filter_answer 401 404 api_version "
        "(see azmm_magic/emulator/faults.py)",
    )
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute per deployment (429 beyond)")
    parser.add_argument("--tpm", type=int, default=None, help="tokens per minute per deployment (429 beyond)")
    parser.add_argument("--rate-window", type=float, default=10.0,
                        help="seconds of the sliding window RPM/TPM are enforced over (default: 10)")
    parser.add_argument("--batch-delay", type=float, default=3.0,
                        help="seconds a Batch API job takes from validating to completed (default: 3)")
    parser.add_argument("--batch-expire-after", type=int, default=None,
                        help="Batch API jobs expire after this many lines (default: never)")
    parser.add_argument("--lenient-api-versions", action="store_true",
                        help="accept any dated api-version, not only the ones Azure serves")
    parser.add_argument("--lenient-rule", action="append", default=[], metavar="RULE",
                        help="skip one request rule (see azmm_magic/emulator/validation.py); repeatable")
    parser.add_argument("--max-images", type=int, default=None,
                        help="images per request (default: the model's documented limit, 10 when unknown)")
    parser.add_argument("--max-image-mb", type=float, default=20.0, help="largest image in MB (default: 20)")
    parser.add_argument("--async-content-filter", action="store_true",
                        help="streams carry Azure's asynchronous-filter annotation chunks (no delta)")
    parser.add_argument("--no-decode", action="store_true",
                        help="answer from each image's header only, without decoding its pixels (cheap on the CPU)")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Build the :class:`EmulatorConfig` from parsed options and the environment."""
    deployments = None
    if args.deployments:
        deployments = [name.strip() for name in args.deployments.split(",") if name.strip()]
    return EmulatorConfig(
        api_key=args.api_key or os.environ.get("AZMM_EMULATOR_API_KEY") or None,
        bearer_token=os.environ.get("AZMM_EMULATOR_BEARER_TOKEN") or None,
        deployments=deployments,
        **({"default_model": args.default_model} if getattr(args, "default_model", None) else {}),
        latency=args.latency,
        stream_chunk_delay=args.stream_chunk_delay,
        faults=list(getattr(args, "fault", None) or []),
        rpm=args.rpm,
        tpm=args.tpm,
        rate_window=args.rate_window,
        batch_delay=args.batch_delay,
        batch_expire_after=args.batch_expire_after,
        lenient_api_versions=bool(getattr(args, "lenient_api_versions", False)),
        lenient_rules=tuple(getattr(args, "lenient_rule", None) or ()),
        max_images=getattr(args, "max_images", None),
        max_image_bytes=int(float(getattr(args, "max_image_mb", 20.0)) * 1024 * 1024),
        async_content_filter=bool(getattr(args, "async_content_filter", False)),
        decode_images=not getattr(args, "no_decode", False),
    )


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    from azmm_magic.core.endpoints import is_loopback_host

    return is_loopback_host(host)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, bind, print ``Listening on URL`` and serve until interrupted; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    try:
        config = config_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    import uvicorn

    print(f"Listening on {url_for(sock)}", flush=True)
    from .models import describe_deployments

    for line in describe_deployments(config):
        print(line, file=sys.stderr, flush=True)
    if not _is_loopback(args.host):
        print(
            f"warning: {args.host} is not a loopback address; the emulator is reachable from the network "
            "(its /_emulator/ control endpoints answer other machines only with --api-key)",
            file=sys.stderr,
            flush=True,
        )
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
