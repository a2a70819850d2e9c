"""Use cases on PowerMTA nodes as registered resources (admin only): register, read, change, remove, and the
accounting forwarder's token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import fields, replace

from campaign_gateway.app.delivery_views import NodeView
from campaign_gateway.app.unit_of_work import CampaignUnitOfWork
from campaign_gateway.domain.pmta_nodes import NodeRecord, NodeSpec, validate_node, with_defaults
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import AlreadyExists, InvalidArgument, NotFound
from libs.pagination import page_size

RECENT_PROBLEMS = 20
_SPEC_FIELDS = frozenset(f.name for f in fields(NodeSpec))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class NodeUseCases:
    def __init__(self, unit_of_work: Callable[[], CampaignUnitOfWork], clock: Clock):
        self._uow = unit_of_work
        self._clock = clock

    def create(self, caller: Caller, spec: NodeSpec) -> NodeView:
        caller.require_admin()
        filled = with_defaults(spec)
        validate_node(filled)
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        record = NodeRecord(spec=filled, create_time=now, update_time=now)
        audit.note(resource=f"pmta-nodes/{filled.name}")
        with self._uow() as uow:
            if uow.pmta_nodes.get(filled.name) is not None:
                raise AlreadyExists("pmta node", filled.name)
            uow.pmta_nodes.add(record, token_sha256=token_hash(token))
            uow.commit()
        return NodeView(record=record, forwarder_token=token)

    def get(self, caller: Caller, name: str) -> NodeView:
        caller.require_admin()
        with self._uow() as uow:
            record = uow.pmta_nodes.get(name)
            if record is None:
                raise NotFound("pmta node", name)
            return self._view(uow, record)

    def _view(self, uow: CampaignUnitOfWork, record: NodeRecord) -> NodeView:
        name = record.spec.name
        return NodeView(
            record=record,
            last_deployment=uow.deployments.latest(name),
            cursor=uow.accounting.cursor(name),
            pending=len(uow.accounting.pending(name)),
            recent_problems=tuple(uow.accounting.recent_problems(name, limit=RECENT_PROBLEMS)),
        )

    def list(self, caller: Caller, *, size: int, token: str) -> tuple[list[NodeView], str]:
        caller.require_admin()
        limit = page_size(size)
        with self._uow() as uow:
            found = uow.pmta_nodes.list(limit=limit + 1, after=token)
            views = [self._view(uow, record) for record in found[:limit]]
        next_token = views[-1].record.spec.name if len(found) > limit else ""
        return views, next_token

    def update(self, caller: Caller, name: str, changes: Mapping[str, object]) -> NodeView:
        """`changes`: NodeSpec field -> new value (the servicer reads them from the update mask)."""
        caller.require_admin()
        unknown = sorted(set(changes) - _SPEC_FIELDS)
        if unknown:
            raise InvalidArgument("update_mask", f"unknown or read-only fields: {', '.join(unknown)}")
        if "name" in changes and changes["name"] != name:
            raise InvalidArgument("pmta_node.name", "a node is never renamed: register a new one")
        audit.note(resource=f"pmta-nodes/{name}")
        with self._uow() as uow:
            record = uow.pmta_nodes.get(name)
            if record is None:
                raise NotFound("pmta node", name)
            spec = with_defaults(replace(record.spec, **changes))  # type: ignore[arg-type]
            validate_node(spec)
            now = self._clock.now()
            uow.pmta_nodes.update_spec(spec, now=now)
            uow.commit()
            updated = replace(record, spec=spec, update_time=now)
            return self._view(uow, updated)

    def delete(self, caller: Caller, name: str) -> None:
        caller.require_admin()
        audit.note(resource=f"pmta-nodes/{name}")
        with self._uow() as uow:
            if not uow.pmta_nodes.delete(name):
                raise NotFound("pmta node", name)
            uow.commit()

    def rotate_token(self, caller: Caller, name: str) -> NodeView:
        caller.require_admin()
        token = secrets.token_urlsafe(32)
        audit.note(resource=f"pmta-nodes/{name}")
        with self._uow() as uow:
            record = uow.pmta_nodes.get(name)
            if record is None:
                raise NotFound("pmta node", name)
            uow.pmta_nodes.set_token(name, token_hash(token), now=self._clock.now())
            uow.commit()
            return replace(self._view(uow, record), forwarder_token=token)

    def check_forwarder_token(self, name: str, token: str) -> bool:
        """True when `token` is the node's forwarder token (compared in constant time)."""
        with self._uow() as uow:
            stored = uow.pmta_nodes.token_sha256(name)
        return stored is not None and bool(token) and hmac.compare_digest(stored, token_hash(token))
