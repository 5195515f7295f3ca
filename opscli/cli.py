"""``extend-deleter``: the operator's command line (also ``extend-deleter``).

Command groups, each in its own module under ``opscli/commands/``: the queue (``enqueue``, ``status``, ``dlq``,
``redrive``), ``tenants`` and ``receipts``, and ``smoke``. Every command takes the global options (``--stack-name``,
``--region``, ``--profile``, ``--role-arn``, ``--json``) before or after its name.

Exit status: 0 done; 1 the job ran but something was not done (ids not queued, messages not moved, an AWS
refusal); 2 bad input (a file, a column, invalid ids, a checkpoint, a missing setting); 130 interrupted. Errors
are one line on stderr, with the AWS error code and message when AWS refused: never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from opscli import queues
from opscli.commands import queue, smoke, tenants
from opscli.context import EXIT_INCOMPLETE, EXIT_INTERRUPTED, CliError, Context, aws_error

PROG: Final = "extend-deleter"
# The command groups, each registering its commands: the one table the parser is built from.
COMMAND_GROUPS: Final[tuple[Callable[[Any, list[argparse.ArgumentParser]], None], ...]] = (
    queue.register,
    tenants.register,
    smoke.register,
)
GLOBAL_DEFAULTS: Final = {"stack_name": None, "region": None, "profile": None, "role_arn": None, "json": False}


def _global_options() -> argparse.ArgumentParser:
    """The options every command takes, before or after its name. Suppressed defaults: one given before the
    command is not overwritten by the command's parser (the defaults are filled in after parsing)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("global options")
    group.add_argument("--stack-name", default=argparse.SUPPRESS, help="read settings from this stack's outputs")
    group.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: the credential chain's)")
    group.add_argument(
        "--profile", default=argparse.SUPPRESS, help="AWS profile (e.g. one whose role_arn is the operator role)"
    )
    group.add_argument(
        "--role-arn", default=argparse.SUPPRESS, help="assume this role first (the stack's OperatorRoleArn output)"
    )
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON (for scripts)")
    return options


def build_parser() -> argparse.ArgumentParser:
    common = [_global_options()]
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=common,
        description="Operate an Extend deleter stack: tenants, bulk deletions, dead letters, receipts, smoke tests.",
        epilog="Uses boto3's credentials (--profile, --role-arn); AWS_ENDPOINT_URL drives the local stack "
        "(make run ARGS=--serve).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMAND_GROUPS:
        register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    context = Context(args, out, err)
    try:
        status: int = args.run(context)
    except CliError as error:
        err.write(f"error: {error}\n")
        return error.status
    except queues.QueueError as error:
        err.write(f"error: {error}\n")
        return EXIT_INCOMPLETE
    except ClientError as error:
        err.write(f"error: {aws_error(error)}\n")
        return EXIT_INCOMPLETE
    except BotoCoreError as error:
        err.write(f"error: {type(error).__name__}: {str(error).splitlines()[0]}\n")
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    return status


def console() -> None:
    """The ``extend-deleter`` console script."""
    sys.exit(main())
