"""`platform-stack up|down|status|env`: the embedded stack of real servers on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.servers import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platform-stack", description=__doc__)
    parser.add_argument("--dir", help="stack data directory (default: $PLATFORM_STACK_DIR or .platform/stack)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every server that is not running (idempotent)")
    down = sub.add_parser("down", help="stop every server (clean stop, forced after a timeout)")
    for cmd in (up, down):
        cmd.add_argument(
            "servers",
            nargs="*",
            help="clickhouse, postgres, kafka, s3, and superset (opt-in: only when named; default: all the others)",
        )
    status = sub.add_parser("status", help="health of each server from a real protocol call")
    status.add_argument("--json", action="store_true")
    sub.add_parser("env", help="print connection settings as `export` lines for the resources")
    args = parser.parse_args(argv)

    try:
        stack = Stack(StackConfig.from_env(args.dir))
        if args.command == "up":
            states = stack.up(args.servers)
            for name, state in states.items():
                print(f"{name:<11} {state}")
            if "postgres" in states:
                migrate_app_schema(stack)
            if "superset" in states:
                _print_superset_login(stack)
            return _print_status(stack, as_json=False)
        if args.command == "down":
            for name, state in stack.down(args.servers).items():
                print(f"{name:<11} {state}")
            return 0
        if args.command == "status":
            return _print_status(stack, as_json=args.json)
        for key, value in stack.env().items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    except StackError as exc:
        print(f"platform-stack {args.command}: {exc}", file=sys.stderr)
        return 1


def migrate_app_schema(stack: Stack) -> list[str]:
    """The demo app's schema (the CDC source tables) in the app database; idempotent.

    The launcher only starts servers (and creates the empty app database). This command is
    the composition point where the CDC domain's schema is applied on top, so the import of
    ``platform_assets.cdc`` stays here, lazily, and out of the server modules.
    """
    import psycopg

    from platform_assets.cdc.source import SourceError, migrate

    env = stack.servers["postgres"].env()
    try:
        with psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            dbname=env["POSTGRES_DB"],
            connect_timeout=3,
        ) as conn:
            return migrate(conn)
    except SourceError as exc:
        raise StackError(f"postgres app schema: {exc}") from exc


def _print_superset_login(stack: Stack) -> None:
    """Where to open Superset and how to log in (docs/superset.md); also in `platform-stack env`."""
    env = stack.optional["superset"].env()
    print(
        f"superset    open {env['SUPERSET_URL']}  user {env['SUPERSET_USERNAME']}  password {env['SUPERSET_PASSWORD']}"
    )


def _print_status(stack: Stack, as_json: bool) -> int:
    health = stack.status()
    if as_json:
        print(json.dumps({n: {"healthy": h.healthy, "detail": h.detail, "pid": h.pid} for n, h in health.items()}))
    else:
        for name, h in health.items():
            state = "healthy" if h.healthy else "DOWN"
            print(f"{name:<11} {state:<8} pid={h.pid or '-':<8} {h.detail}")
    return 0 if all(h.healthy for h in health.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
