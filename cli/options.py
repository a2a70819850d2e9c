"""Options several commands share, named after the API's fields (`tenant_id` is `--tenant-id`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

F = Callable[..., Any]


def tenant_id_option(*, help: str, field: str = "tenant_id") -> Callable[[F], F]:
    """The request's tenant field (`--tenant-id`, or `--tenant` where the field is `tenant`), which also says
    whose token to sign locally; `--tenant` is accepted for `--tenant-id` too."""
    names = ["--tenant-id", "--tenant"] if field == "tenant_id" else ["--tenant"]
    return click.option(*names, "tenant", default=None, metavar="TENANT", help=help)


def enum_choice(values: Sequence[str]) -> click.Choice:
    """A choice among an enum's values without their prefix, in any case (`warming`, `WARMING`)."""
    return click.Choice(list(values), case_sensitive=False)


def page_options(command: F) -> F:
    command = click.option("--page-token", default="", help="Where the page starts (from the previous page).")(command)
    return click.option("--page-size", type=click.IntRange(1, 1000), default=None, help="Entries per page.")(command)
