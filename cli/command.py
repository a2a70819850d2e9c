"""What every operator command shares: the gateway and token options, `--json`, and how it fails.

    @group.command("show")
    @operator_options
    @click.argument("address")
    def show(api: Api, address: str) -> None:
        api.show(api.gateway.get(f"/api/v2/ips/{segment(address)}"), render_ip)

A command's usage errors (a missing option, a bad choice) and every CliError end it with one line on stderr
and the documented exit code (`cli.errors`); an unexpected failure says what it was, in one line too, and exits 4.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cli.errors import CliError, ExitCode, one_line

if TYPE_CHECKING:  # imported when a command runs: `emailengine serve` does not load httpx and rich
    from cli.gateway import Gateway, Reply
    from cli.render import Output


class BadUsage(click.UsageError):
    """A usage error in one line (`error: Missing option '--tenant-id'. (see: emailengine ips add --help)`)."""

    exit_code = int(ExitCode.BAD_INPUT)

    def show(self, file: Any = None) -> None:
        hint = f" (see: {self.ctx.command_path} --help)" if self.ctx is not None else ""
        click.echo(f"error: {one_line(self.format_message())}{hint}", err=True)


def _one_line_usage(error: click.UsageError) -> click.UsageError:
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        error.exit_code = int(ExitCode.BAD_INPUT)  # the help is shown, as click does, but it is still a usage error
        return error
    return BadUsage(error.format_message(), error.ctx)


class OperatorCommand(click.Command):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            raise _one_line_usage(error) from None


class OperatorGroup(click.Group):
    command_class = OperatorCommand

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            raise _one_line_usage(error) from None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            raise _one_line_usage(error) from None


OperatorGroup.group_class = OperatorGroup


@dataclass
class Api:
    """What a command body gets: the gateway, the output, and the tenant the command is about."""

    gateway: Gateway
    out: Output
    tenant: str

    @property
    def json_mode(self) -> bool:
        return self.out.json_mode

    def show(self, reply: Reply, render: Callable[[Output, Any], None]) -> None:
        """`--json`: the answer untouched; otherwise as `render` shows it."""
        if self.out.json_mode:
            self.out.raw(reply)
        else:
            render(self.out, reply.data)

    def need_tenant(self, flag: str = "--tenant-id") -> str:
        if not self.tenant:
            raise CliError(f"which tenant? give {flag} NAME", ExitCode.BAD_INPUT)
        return self.tenant


INTERRUPTED = 130  # Ctrl-C, as shells report it


def fail(message: str, exit_code: int) -> NoReturn:
    click.echo(f"error: {one_line(message)}", err=True)
    raise click.exceptions.Exit(int(exit_code))


def _flags(ctx: click.Context) -> frozenset[str]:
    names: set[str] = set()
    for param in ctx.command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
        elif isinstance(param, click.Argument):
            names.add(param.human_readable_name.upper())
    return frozenset(names)


def operator_options(body: Callable[..., None]) -> Callable[..., None]:
    """The options every operator command has, and its error handling. Put it right under `@group.command`
    (above the command's own options, so that it sees them and its own come last in `--help`).

    A command that declares a `tenant` parameter (`--tenant-id/--tenant`, `--tenant` or a TENANT_ID argument) is
    about that tenant, which also signs the local token; the others get `--tenant` for the token alone. With
    `--token`, a missing tenant is the token's own.
    """

    declared = {p.name for p in getattr(body, "__click_params__", [])}
    has_tenant = "tenant" in declared

    @functools.wraps(body)
    def run(
        gateway: str | None, token_value: str, admin: bool, json_mode: bool, tenant: str | None = None, **params: Any
    ) -> None:
        try:
            from cli.auth import Credentials, tenant_of
            from cli.gateway import Gateway
            from cli.render import Output

            tenant = tenant or (tenant_of(token_value) if token_value else "")
            credentials = Credentials(token=token_value, admin=admin, tenant=tenant)
            ctx = click.get_current_context()
            api = Api(
                Gateway(gateway or default_gateway(), credentials, _flags(ctx)), Output(json_mode=json_mode), tenant
            )
            if has_tenant:
                params["tenant"] = tenant
            body(api, **params)
        except CliError as error:
            fail(error.message, error.exit_code)
        except click.UsageError as error:
            error.ctx = error.ctx or click.get_current_context()
            raise _one_line_usage(error) from None
        except KeyboardInterrupt:
            fail("interrupted", INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as error:  # never a traceback: say what it was, in one line
            fail(f"unexpected failure: {type(error).__name__}: {error}", ExitCode.OTHER)

    params = list(getattr(body, "__click_params__", []))
    common = [
        click.Option(
            ["--gateway"],
            envvar="EE_GATEWAY_URL",
            default=None,
            help="The gateway's URL [default: EE_GATEWAY_URL, else http://127.0.0.1:8080, or the port in "
            "EE_GATEWAY_PORT].",
        ),
        click.Option(
            ["--token", "token_value"],
            envvar="EE_TOKEN",
            default="",
            help="Bearer token (default EE_TOKEN); without one, --tenant or --admin signs one with the local key.",
        ),
        click.Option(["--admin"], is_flag=True, help="Act as an admin (a token signed with the local key)."),
        click.Option(["--json", "json_mode"], is_flag=True, help="Print the API's JSON answer, untouched."),
    ]
    if not has_tenant:
        common.append(click.Option(["--tenant"], default=None, help="Act as an operator of this tenant (local key)."))
    # click shows __click_params__ last-first: the command's own options, then these.
    run.__click_params__ = list(reversed(common)) + params  # type: ignore[attr-defined]
    return run


def default_gateway() -> str:
    port = os.environ.get("EE_GATEWAY_PORT", "").strip()
    return f"http://127.0.0.1:{port}" if port.isdigit() else "http://127.0.0.1:8080"
