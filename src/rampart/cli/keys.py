"""``rampart keys``: issue, list, rotate, revoke and prune client API keys (API Gateway + Secrets Manager)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rampart.cli.common import EXIT_USAGE, CliError, add_state_file_option, env_or, resolve_state_path

DESCRIPTION = """\
Client API keys, kept outside Terraform. Each client of stack NAME gets an API Gateway key
"NAME-CLIENT-N" on the usage plan "NAME-TIER", and its value in the Secrets Manager secret
"NAME/api-keys/CLIENT" (encrypted with alias/NAME-api-keys). Key values are never printed
unless --show-value is given; read them from the secret.

Target: the running `rampart up` (its state file names the emulator and the stack), or AWS with
--aws --stack-name NAME [--region REGION] and ordinary AWS credentials.

examples:
  rampart keys create --client acme --tier standard
  rampart keys list
  rampart keys rotate --client acme --overlap 24h    # both keys work for 24 h
  rampart keys revoke --client acme --previous        # end the overlap now
  rampart keys revoke --client acme                   # every key of the client, at once
  rampart keys prune                                  # remove previous keys whose overlap has ended
  rampart keys list --aws --stack-name rampart-prod --region eu-west-1
"""


def _target_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("target")
    where.add_argument("--aws", action="store_true", help="talk to AWS (ordinary credentials) instead of the twin")
    where.add_argument(
        "--stack-name",
        default=env_or("RAMPART_STACK_NAME"),
        help="with --aws: the stack's name, Terraform's var.name (env RAMPART_STACK_NAME)",
    )
    where.add_argument(
        "--region",
        default=env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION")),
        help="with --aws: the AWS region (env AWS_REGION)",
    )
    add_state_file_option(where)  # type: ignore[arg-type]
    return common


def _manager(args: argparse.Namespace) -> tuple[Any, tuple[str, str]]:
    """The key manager for the chosen target, and how to name that target in an error."""
    from rampart.keys import KeyManager, KeysError  # noqa: PLC0415

    try:
        if args.aws:
            if not args.stack_name:
                raise CliError("--aws needs --stack-name (the stack's name, e.g. rampart-prod)", EXIT_USAGE)
            if not args.region:
                raise CliError("--aws needs --region (or AWS_REGION)", EXIT_USAGE)
            import boto3  # noqa: PLC0415

            session = boto3.session.Session(region_name=args.region)
            manager = KeyManager(session.client("apigateway"), session.client("secretsmanager"), args.stack_name)
            return manager, (f"AWS ({args.region})", "check the network and the region")
        from rampart.local.aws import client  # noqa: PLC0415
        from rampart.local.state import read_state  # noqa: PLC0415

        state = read_state(resolve_state_path(args))
        if args.stack_name and args.stack_name != state.stack_name:
            raise CliError(
                f"the running twin is stack {state.stack_name!r}, not {args.stack_name!r} (AWS needs --aws)", EXIT_USAGE
            )
        apigateway = client("apigateway", state.aws_endpoint, state.region)
        secretsmanager = client("secretsmanager", state.aws_endpoint, state.region)
        twin = f"the local twin ({state.aws_endpoint})"
        return KeyManager(apigateway, secretsmanager, state.stack_name), (twin, "is `rampart up` still running?")
    except KeysError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _run(args: argparse.Namespace, action: Callable[[Any], int]) -> int:
    """Run one key action; every failure becomes one line (no trace, no key value)."""
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    from rampart.keys import KeysError  # noqa: PLC0415

    manager, (where, hint) = _manager(args)
    try:
        return action(manager)
    except KeysError as exc:
        raise CliError(str(exc)) from None
    except NoCredentialsError:
        raise CliError("no AWS credentials found (configure them as for the AWS CLI)") from None
    except NoRegionError:
        raise CliError("no AWS region: pass --region or set AWS_REGION", EXIT_USAGE) from None
    except EndpointConnectionError:
        raise CliError(f"cannot reach {where}; {hint}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "the call")
        detail = str(error.get("Message") or "").splitlines()[0][:200] if error.get("Message") else ""
        raise CliError(f"{where} refused {operation}: {error.get('Code', 'error')}: {detail}".rstrip(": ")) from None
    except BotoCoreError as exc:
        raise CliError(f"{where}: {type(exc).__name__}") from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=None, sort_keys=False), flush=True)


def _issued(manager: Any, keys: Any, show_value: bool) -> dict[str, Any]:
    from rampart.keys import secret_name  # noqa: PLC0415

    out: dict[str, Any] = {**keys.summary(), "secret": secret_name(manager.stack, keys.client)}
    if show_value:
        out["value"] = keys.current.value
    return out


def cmd_create(args: argparse.Namespace) -> int:
    def create(manager: Any) -> int:
        keys = manager.create(args.client, args.tier)
        _print_json(_issued(manager, keys, args.show_value))
        return 0

    return _run(args, create)


def cmd_rotate(args: argparse.Namespace) -> int:
    def rotate(manager: Any) -> int:
        keys = manager.rotate(args.client, args.overlap)
        _print_json(_issued(manager, keys, args.show_value))
        return 0

    return _run(args, rotate)


def cmd_revoke(args: argparse.Namespace) -> int:
    def revoke(manager: Any) -> int:
        revoked = manager.revoke(args.client, previous_only=args.previous)
        _print_json({"client": args.client, "revoked_key_ids": revoked})
        return 0

    return _run(args, revoke)


def cmd_prune(args: argparse.Namespace) -> int:
    def prune(manager: Any) -> int:
        pruned = manager.prune(args.client)
        _print_json({"pruned": [{"client": c, "key_id": k} for c, k in pruned]})
        return 0

    return _run(args, prune)


def cmd_list(args: argparse.Namespace) -> int:
    import dataclasses  # noqa: PLC0415

    def show(manager: Any) -> int:
        rows = manager.list_keys()
        if args.json:
            for row in rows:
                _print_json(dataclasses.asdict(row))
            return 0
        columns = ("client", "tier", "key_id", "name", "enabled", "role", "created_at", "expires_at")
        table = [[str(getattr(r, c) if getattr(r, c) is not None else "-") for c in columns] for r in rows]
        widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(columns)]
        print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for line in table:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        if not rows:
            print(f"(no client keys in stack {manager.stack})", file=sys.stderr)
        return 0

    return _run(args, show)


def _client_name(text: str) -> str:
    from rampart.keys import KeysError, check_name  # noqa: PLC0415

    try:
        return check_name("the client", text)
    except KeysError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tier_name(text: str) -> str:
    from rampart.keys import KeysError, check_name  # noqa: PLC0415

    try:
        return check_name("the tier", text)
    except KeysError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> Any:
    from rampart.keys import parse_duration  # noqa: PLC0415

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: Any) -> None:
    target = _target_options()
    p = sub.add_parser(
        "keys",
        help="issue, list, rotate and revoke client API keys (the twin, or AWS with --aws)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="keys_command", metavar="ACTION")
    actions.required = True

    create = actions.add_parser(
        "create", parents=[target], help="issue a client's first key", description="Issue a client's first key."
    )
    create.add_argument("--client", required=True, type=_client_name, help="the client's name, e.g. acme")
    create.add_argument("--tier", default="standard", type=_tier_name, help="usage plan tier (default standard)")
    create.add_argument("--show-value", action="store_true", help="also print the key value (it is in the secret)")
    create.set_defaults(func=cmd_create)

    listing = actions.add_parser(
        "list", parents=[target], help="the stack's keys (ids, never values)", description="List the stack's keys."
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per key")
    listing.set_defaults(func=cmd_list)

    rotate = actions.add_parser(
        "rotate",
        parents=[target],
        help="issue a new current key; the old one stays valid for the overlap",
        description="Issue a new current key. The old key keeps working until the overlap ends; then "
        "`rampart keys prune` (or `revoke --previous`) removes it.",
    )
    rotate.add_argument("--client", required=True, type=_client_name)
    rotate.add_argument(
        "--overlap", default="24h", type=_duration, help="how long the old key stays valid: 90s, 15m, 24h, 7d (24h)"
    )
    rotate.add_argument("--show-value", action="store_true", help="also print the new key value")
    rotate.set_defaults(func=cmd_rotate)

    revoke = actions.add_parser(
        "revoke",
        parents=[target],
        help="disable and delete a client's keys at once",
        description="Disable, then delete, every key of the client and its secret (or only the previous key).",
    )
    revoke.add_argument("--client", required=True, type=_client_name)
    revoke.add_argument("--previous", action="store_true", help="only the previous key: end the overlap now")
    revoke.set_defaults(func=cmd_revoke)

    prune = actions.add_parser(
        "prune",
        parents=[target],
        help="delete previous keys whose overlap has ended (run it on a schedule)",
        description="Delete the previous keys whose overlap window has ended.",
    )
    prune.add_argument("--client", type=_client_name, default=None, help="only this client")
    prune.set_defaults(func=cmd_prune)
