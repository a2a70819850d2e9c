"""Every operator command has the same footing: the gateway, the token, --json, and kebab-case flags."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click

from libs.cli import main

# Commands that run the platform, or (simulate) run its rules offline: they never call the gateway.
SERVICE_COMMANDS = {"token", "run", "serve", "gateway", "worker", "scheduler", "migrate", "simulate"}
COMMON = {"--gateway", "--token", "--admin", "--json"}


def operator_commands() -> Iterator[tuple[str, click.Command]]:
    for name, command in main.commands.items():
        if name in SERVICE_COMMANDS:
            continue
        if isinstance(command, click.Group):
            for sub, leaf in command.commands.items():
                yield f"{name} {sub}", leaf
        else:
            yield name, command


def test_the_groups_the_issue_asks_for_are_there() -> None:
    names = {name for name, _ in operator_commands()}
    for group, commands in {
        "ips": "add list show pause resume retire release transfer decisions",
        "schedules": "list show create",
        "tenants": "list show update",
        "reputation": "check show scan zones",
        "domains": "validate check",
        "campaigns": "create show list pause resume",
        "suppressions": "add list",
        "alerts": "list show send",
        "routes": "list add delete",
        "dead-letters": "list replay",
    }.items():
        assert {f"{group} {c}" for c in commands.split()} <= names
    assert "health" in names


def test_every_operator_command_takes_the_gateway_a_token_and_json_and_a_tenant() -> None:
    for name, command in operator_commands():
        flags = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}
        assert flags >= COMMON, name
        assert "--tenant" in flags or any(p.name == "tenant" for p in command.params), name
        for flag in flags:
            assert re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", flag), f"{name}: {flag}"
        assert command.help, f"{name} has no help"
