"""The use cases' synchronous view of PowerMTA nodes over SSH (`pmta_node`), reached with the registered host key
and the platform's client key (a setting, never stored with the node)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from campaign_gateway.adapters.pmta_node import (
    AccountingPull,
    AccountingSource,
    CommandResult,
    DeployResult,
    NodeAccess,
    PmtaNodeClient,
    RemoteFileCursor,
)
from campaign_gateway.domain.pmta_nodes import NodeSpec
from libs.errors import FailedPrecondition

T = TypeVar("T")


@dataclass(frozen=True)
class SshSettings:
    client_key_file: Path | None
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    connect_attempts: int = 3
    client_key: str = field(default="", repr=False)


class SshNodeGateway:
    """One SSH connection per operation, opened and closed by it (a node's work is seconds apart at most)."""

    def __init__(self, settings: SshSettings):
        self._settings = settings

    @property
    def configured(self) -> bool:
        return bool(self._settings.client_key or self._settings.client_key_file)

    def _client_key(self) -> str:
        if self._settings.client_key:
            return self._settings.client_key
        if self._settings.client_key_file is None:
            raise FailedPrecondition(
                "no SSH client key is configured (EE_CAMPAIGN_GATEWAY_PMTA_SSH_KEY_FILE): PowerMTA nodes are "
                "planned but never contacted"
            )
        return self._settings.client_key_file.read_text()

    def access(self, spec: NodeSpec) -> NodeAccess:
        return NodeAccess(
            name=spec.name,
            host=spec.ssh_host,
            port=spec.ssh_port,
            username=spec.ssh_user,
            host_key=spec.ssh_host_key,
            client_key=self._client_key(),
            config_path=spec.config_path,
            pmta_command=spec.pmta_command,
            connect_timeout=self._settings.connect_timeout,
            command_timeout=self._settings.command_timeout,
            connect_attempts=self._settings.connect_attempts,
        )

    def _run(self, spec: NodeSpec, work: Any) -> Any:
        access = self.access(spec)

        async def go() -> Any:
            async with PmtaNodeClient(access) as node:
                return await work(node)

        return _run(go())

    def read_config(self, spec: NodeSpec) -> str | None:
        return self._run(spec, lambda node: node.read_config())  # type: ignore[no-any-return]

    def deploy(self, spec: NodeSpec, text: str, *, force: bool) -> DeployResult:
        return self._run(spec, lambda node: node.deploy_config(text, force=force))  # type: ignore[no-any-return]

    def pause(self, spec: NodeSpec, vmta: str) -> CommandResult:
        return self._run(spec, lambda node: node.pause_queue(vmta))  # type: ignore[no-any-return]

    def resume(self, spec: NodeSpec, vmta: str) -> CommandResult:
        return self._run(spec, lambda node: node.resume_queue(vmta))  # type: ignore[no-any-return]

    def pull(self, spec: NodeSpec, cursor: RemoteFileCursor | None, *, max_bytes: int) -> AccountingPull:
        source = AccountingSource(
            directory=spec.accounting_directory,
            pattern=spec.accounting_pattern,
            other_directories=spec.accounting_move_to,
        )
        return self._run(spec, lambda node: node.pull_accounting(source, cursor, max_bytes=max_bytes))  # type: ignore[no-any-return]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine from synchronous code (a gRPC worker thread, a job): a fresh event loop each time."""
    return asyncio.run(coroutine)
