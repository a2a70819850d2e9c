"""Use cases that keep every PowerMTA node on the configuration the IP pool implies.

* `plan`: what each node would get, as a diff against the file on the node, nothing deployed.
* `deploy_node` (a job, one per node, under the node's "deploy" lease so any number of workers can run): render
  from ip-pool's IPs and the tenants' sending windows, deploy when the file changed (the adapter writes atomically,
  reloads, restores the previous file when the reload fails), record the outcome, publish `PmtaDeployFailed` on a
  failure.
* `deploy_all` (hourly): one `deploy_node` job per registered node.
* Event handlers: `IpQuotaChanged` and `IpStateChanged` enqueue work for the IP's node; nothing is done over SSH
  inside the consumer's transaction.
* `apply_ip_state` (a job): an IP leaving sending (STANDBY, PAUSED, RETIRED) has its queues paused on its node at
  once (`pause queue */<vmta>`), one coming back has them resumed; then its node is redeployed. The queues paused
  are recorded (`queue_holds`), and every deploy of a node puts them right against the IP pool: a pause or a resume
  whose job was lost (a worker or Redis killed in between) is done by the next deploy, hourly at the latest.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from campaign_gateway.adapters.ippool_peer import PoolIp, ip_state_name
from campaign_gateway.adapters.pmta_node import NodeCommandFailed, NodeUnreachable, PmtaNodeError
from campaign_gateway.app.delivery_views import Deployment, IpStateApplied, NodePlan
from campaign_gateway.app.ports import IpPool, NodeGateway, Scheduler
from campaign_gateway.app.unit_of_work import CampaignUnitOfWork
from campaign_gateway.domain.ip_states import SENDING_STATES, IpState
from campaign_gateway.domain.pmta_config import (
    NodeIp,
    PmtaNode,
    RenderedConfig,
    RenderSettings,
    diff_configs,
    render_node_config,
    vmta_name,
)
from campaign_gateway.domain.pmta_nodes import (
    DEPLOY_FAILURES,
    DeployOutcome,
    DeployTrigger,
    NodeRecord,
    sending_window_hours,
)
from campaign_gateway.domain.providers import IP_POOL_GROUPS
from emailengine.campaign.v1 import delivery_events_pb2 as events
from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import Aborted, FailedPrecondition, NotFound, ServiceError
from libs.pagination import TimePosition, page_size

log = logging.getLogger(__name__)

DEPLOY = "deploy"
MAX_FOLLOW_UPS = 3
_CAPPED_GROUPS = {group.value: group for group in IP_POOL_GROUPS}


@dataclass(frozen=True)
class DeploySettings:
    lease: timedelta = timedelta(minutes=5)
    accounting_forwarder_command: str | None = None


@dataclass(frozen=True)
class Rendered:
    config: RenderedConfig | None
    error: str
    ip_count: int
    skipped: tuple[str, ...]
    """IPs left out of the file, with the reason (data ip-pool holds that cannot be rendered)."""
    ips: tuple[NodeIp, ...] = ()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DeployUseCases:
    def __init__(
        self,
        unit_of_work: Callable[[], CampaignUnitOfWork],
        clock: Clock,
        *,
        ippool: IpPool,
        nodes: NodeGateway,
        scheduler: Scheduler,
        settings: DeploySettings,
    ):
        self._uow = unit_of_work
        self._clock = clock
        self._ippool = ippool
        self._nodes = nodes
        self._scheduler = scheduler
        self._settings = settings

    # ------------------------------------------------------------ rendering

    def _render(self, records: list[NodeRecord]) -> dict[str, Rendered]:
        ips = self._ippool.list_ips()
        windows = {
            tenant: sending_window_hours(day.window_start_hour, day.window_end_hour)
            for tenant in sorted({ip.tenant_id for ip in ips})
            for day in [self._ippool.tenant_day(tenant)]
        }
        rendered: dict[str, Rendered] = {}
        for record in records:
            spec = record.spec
            mine = [ip for ip in ips if ip.pmta_node == spec.name]
            node_ips, skipped = [], []
            for ip in mine:
                if not ip.helo_hostname:
                    skipped.append(f"{ip.address}: no HELO host name in ip-pool")
                    continue
                node_ips.append(_node_ip(ip, windows.get(ip.tenant_id)))
            settings = RenderSettings(
                accounting_file=spec.accounting_directory.rstrip("/") + "/acct.csv",
                accounting_forwarder_command=self._settings.accounting_forwarder_command,
            )
            try:
                config = render_node_config(node=PmtaNode(spec.name, spec.hostname), ips=node_ips, settings=settings)
                rendered[spec.name] = Rendered(config, "", len(mine), tuple(skipped), tuple(node_ips))
            except ServiceError as exc:
                rendered[spec.name] = Rendered(None, exc.message, len(mine), tuple(skipped))
        return rendered

    # ------------------------------------------------------------ plan

    def plan(self, caller: Caller, names: list[str]) -> list[NodePlan]:
        caller.require_admin()
        records = self._records(names)
        rendered = self._render(records)
        return [self._plan_one(record, rendered[record.spec.name]) for record in records]

    def _records(self, names: list[str]) -> list[NodeRecord]:
        with self._uow() as uow:
            if not names:
                return uow.pmta_nodes.list(limit=10_000, after="")
            found = []
            for name in names:
                record = uow.pmta_nodes.get(name)
                if record is None:
                    raise NotFound("pmta node", name)
                found.append(record)
            return found

    def _plan_one(self, record: NodeRecord, rendered: Rendered) -> NodePlan:
        current, compared_with, error = record.deployed_text, "last-deploy", ""
        if self._nodes.configured:
            try:
                current = self._nodes.read_config(record.spec) or ""
                compared_with = "node"
            except PmtaNodeError as exc:
                error = exc.message
        else:
            error = "no SSH client key is configured: compared with the last deploy"
        excluded = list(rendered.skipped)
        if rendered.config is None:
            return NodePlan(
                record.spec.name, False, "", "", sha256(current), compared_with, rendered.error, rendered.ip_count,
                tuple(excluded),
            )  # fmt: skip
        excluded += [f"{name}: {why}" for name, why in rendered.config.excluded]
        text = rendered.config.text
        diff = diff_configs(current, text, old_label=f"{record.spec.name}:{record.spec.config_path}")
        return NodePlan(
            node=record.spec.name,
            changed=bool(diff),
            diff=diff,
            rendered_sha256=sha256(text),
            current_sha256=sha256(current),
            compared_with=compared_with,
            error=error,
            ip_count=rendered.ip_count,
            excluded=tuple(excluded),
        )

    # ------------------------------------------------------------ deploy

    def deploy(self, caller: Caller, name: str, *, force: bool) -> Deployment:
        """Deploys now, for an admin; another deploy of the node in progress is ABORTED (try again)."""
        caller.require_admin()
        audit.note(resource=f"pmta-nodes/{name}")
        if not self._nodes.configured:
            raise FailedPrecondition(
                "no SSH client key is configured (EE_CAMPAIGN_GATEWAY_PMTA_SSH_KEY_FILE): nodes cannot be deployed"
            )
        deployment = self.deploy_node(name, DeployTrigger.API, force=force)
        if deployment is None:
            raise Aborted(f"a deploy of pmta node {name!r} is in progress; try again")
        return deployment

    def deploy_node(self, name: str, trigger: str, *, force: bool = False) -> Deployment | None:
        """The node's job: None when another worker holds the node's deploy lease (it is deploying it now), or when
        no SSH client key is configured (dry-run: nodes are registered, planned, and never contacted)."""
        if not self._nodes.configured:
            log.info("deploy skipped: no SSH client key (dry-run)", extra={"node": name})
            return None
        owner = f"deploy-{uuid.uuid4().hex[:12]}"
        now = self._clock.now()
        with self._uow() as uow:
            record = uow.pmta_nodes.get(name)
            if record is None:
                raise NotFound("pmta node", name)
            if not uow.leases.acquire(name, DEPLOY, owner, now=now, until=now + self._settings.lease):
                log.info("deploy skipped: the node is being deployed", extra={"node": name})
                return None
            uow.commit()
        try:
            deployment = self._deploy_held(record, trigger, force)
            # A change that came while this deploy ran had its own job skipped (the lease was held): render again
            # and deploy once more when the IP pool moved on meanwhile.
            for _ in range(MAX_FOLLOW_UPS):
                if deployment.outcome is not DeployOutcome.APPLIED or not self._moved_on(record):
                    break
                deployment = self._deploy_held(record, trigger, False)
            return deployment
        finally:
            with self._uow() as uow:
                uow.leases.release(name, DEPLOY, owner)
                uow.commit()

    def _moved_on(self, record: NodeRecord) -> bool:
        """The configuration rendered now differs from the one just deployed."""
        with self._uow() as uow:
            current = uow.pmta_nodes.get(record.spec.name)
        try:
            config = self._render([current or record])[record.spec.name].config
        except ServiceError:
            return False
        return current is not None and config is not None and sha256(config.text) != current.deployed_sha256

    def _deploy_held(self, record: NodeRecord, trigger: str, force: bool) -> Deployment:
        spec = record.spec
        text, detail = "", ""
        try:
            rendered = self._render([record])[spec.name]
            if rendered.config is None:
                raise FailedPrecondition(f"the IP pool's data cannot be rendered: {rendered.error}")
            text = rendered.config.text
            result = self._nodes.deploy(spec, text, force=force)
            if result.restored:
                outcome = DeployOutcome.ROLLED_BACK
                detail = "pmta reload refused the new file; the previous one was put back: " + (
                    result.reload.output if result.reload else ""
                )
                if result.restore_reload is not None and not result.restore_reload.ok:
                    detail += f" (reloading the previous file failed too: {result.restore_reload.output})"
            elif result.changed:
                outcome, detail = DeployOutcome.APPLIED, result.reload.output if result.reload else ""
            else:
                outcome = DeployOutcome.UNCHANGED
            if outcome is not DeployOutcome.ROLLED_BACK:
                self._put_queues_right(record, rendered)
        except (NodeUnreachable, PmtaNodeError) as exc:
            outcome = DeployOutcome.UNREACHABLE if _unreachable(exc) else DeployOutcome.FAILED
            detail = exc.message
        except ServiceError as exc:
            outcome, detail = DeployOutcome.FAILED, exc.message
        return self._record(record, trigger, outcome, text, detail[:2000])

    def _put_queues_right(self, record: NodeRecord, rendered: Rendered) -> None:
        """Pauses the queues of the node's IPs that may not send and are not held yet, and resumes those held for
        an IP that may send again (or that left the node). Runs on every deploy, so a lost `apply_ip_state` job
        is made good by the next one. A node that does not answer is left for the next deploy."""
        assert rendered.config is not None
        text = rendered.config.text
        name = record.spec.name
        wanted = {
            vmta_name(ip.address): ip.address
            for ip in rendered.ips
            if ip.state not in SENDING_STATES and f"<virtual-mta {vmta_name(ip.address)}>" in text
        }
        with self._uow() as uow:
            held = uow.queue_holds.held(name)
        to_pause = [(vmta, address, True) for vmta, address in sorted(wanted.items()) if vmta not in held]
        to_resume = [(vmta, address, False) for vmta, address in sorted(held.items()) if vmta not in wanted]
        for vmta, address, pause in to_pause + to_resume:
            try:
                self._queue_command(record, address, vmta, pause=pause)
            except PmtaNodeError as exc:
                self._queue_failed(record, address, "pause" if pause else "resume", exc)
                return  # the node stopped answering: the next deploy tries again

    def _queue_command(self, record: NodeRecord, address: str, vmta: str, *, pause: bool) -> str:
        """Pauses or resumes the VMTA's queues on the node and records the hold; says what was done."""
        verb = "pause" if pause else "resume"
        try:
            if pause:
                self._nodes.pause(record.spec, vmta)
            else:
                self._nodes.resume(record.spec, vmta)
        except NodeCommandFailed as exc:
            if "unknown virtual MTA" not in (exc.result.output if exc.result else ""):
                return self._queue_failed(record, address, verb, exc)
            verb = f"{verb}: no such VMTA on the node yet"  # nothing queued there: nothing to stop or resume
        with self._uow() as uow:
            if pause:
                uow.queue_holds.hold(record.spec.name, vmta, address, now=self._clock.now())
            else:
                uow.queue_holds.release(record.spec.name, vmta)
            uow.commit()
        log.info("pmta queues %s", verb, extra={"node": record.spec.name, "address": address})
        return verb

    def _record(self, record: NodeRecord, trigger: str, outcome: DeployOutcome, text: str, detail: str) -> Deployment:
        name = record.spec.name
        with self._uow() as uow:
            current = uow.pmta_nodes.get(name) or record
            failed = outcome in DEPLOY_FAILURES
            failures = current.consecutive_failures + 1 if failed else 0
            deployment = Deployment(
                deployment_id=_sortable_id(),
                node=name,
                outcome=outcome,
                time=self._clock.now(),
                config_sha256=sha256(text) if text else "",
                trigger=str(trigger),
                detail=detail,
                consecutive_failures=failures,
            )
            uow.deployments.add(deployment)
            if failed:
                uow.pmta_nodes.record_deploy(
                    name,
                    deployed_sha256=current.deployed_sha256,
                    deployed_text=current.deployed_text,
                    consecutive_failures=failures,
                )
                uow.publish(
                    events.PmtaDeployFailed(
                        node=name,
                        outcome=outcome.value,
                        detail=detail,
                        config_sha256=deployment.config_sha256,
                        consecutive_failures=failures,
                        trigger=str(trigger),
                    ),
                    tenant_id="",
                )
            else:
                uow.pmta_nodes.record_deploy(
                    name, deployed_sha256=sha256(text), deployed_text=text, consecutive_failures=0
                )
            uow.commit()
        if failed:
            log.warning("pmta deploy failed", extra={"node": name, "outcome": outcome.value, "detail": detail})
        return deployment

    def deploy_all(self, trigger: str = DeployTrigger.HOURLY) -> int:
        """One deploy job per registered node; returns how many were enqueued."""
        with self._uow() as uow:
            names = [record.spec.name for record in uow.pmta_nodes.list(limit=10_000, after="")]
        for name in names:
            self._scheduler.deploy_node(name, str(trigger))
        return len(names)

    def deployments(self, caller: Caller, name: str, *, size: int, token: str) -> tuple[list[Deployment], str]:
        caller.require_admin()
        limit = page_size(size)
        with self._uow() as uow:
            if uow.pmta_nodes.get(name) is None:
                raise NotFound("pmta node", name)
            found = uow.deployments.list(name, limit=limit + 1, after=TimePosition.decode(token))
        page = found[:limit]
        next_token = TimePosition(page[-1].time, page[-1].deployment_id).encode() if len(found) > limit else ""
        return page, next_token

    # ------------------------------------------------------------ IP events

    def on_ip_quota_changed(
        self, uow: CampaignUnitOfWork, envelope: event_pb2.EventEnvelope, event: ippool_events.IpQuotaChanged
    ) -> None:
        self._scheduler.deploy_ip_node(event.address, str(DeployTrigger.IP_EVENT))

    def on_ip_state_changed(
        self, uow: CampaignUnitOfWork, envelope: event_pb2.EventEnvelope, event: ippool_events.IpStateChanged
    ) -> None:
        self._scheduler.apply_ip_state(event.address, ip_state_name(event.state))

    def deploy_ip_node(self, address: str, trigger: str) -> Deployment | None:
        node = self._node_of(address)
        if node is None:
            return None
        return self.deploy_node(node.spec.name, trigger)

    def _node_of(self, address: str) -> NodeRecord | None:
        found = [ip for ip in self._ippool.list_ips() if ip.address == address]
        if not found or not found[0].pmta_node:
            log.info("IP on no registered node", extra={"address": address})
            return None
        with self._uow() as uow:
            return uow.pmta_nodes.get(found[0].pmta_node)

    def apply_ip_state(self, address: str, state: str) -> IpStateApplied:
        """Pauses (leaving sending) or resumes (back to sending) the IP's queues on its node, then redeploys the
        node. Idempotent: pausing a paused queue or resuming a running one changes nothing. Says what it did, and
        whether the node could not be reached (the caller may try again)."""
        if not self._nodes.configured:
            return IpStateApplied("dry-run: no SSH client key")
        node = self._node_of(address)
        if node is None:
            return IpStateApplied("no node")
        sending = IpState(state) in SENDING_STATES if state in IpState.__members__ else False
        unreachable = False
        try:
            done = self._queue_command(node, address, vmta_name(address), pause=not sending)
        except PmtaNodeError as exc:
            done = self._queue_failed(node, address, "resume" if sending else "pause", exc)
            unreachable = _unreachable(exc)
        trigger = DeployTrigger.IP_EVENT if sending else DeployTrigger.STANDBY
        deployment = self.deploy_node(node.spec.name, str(trigger))
        unreachable = unreachable or (deployment is not None and deployment.outcome is DeployOutcome.UNREACHABLE)
        return IpStateApplied(done, unreachable)

    def _queue_failed(self, node: NodeRecord, address: str, verb: str, error: PmtaNodeError) -> str:
        with self._uow() as uow:
            uow.publish(
                events.PmtaQueueCommandFailed(node=node.spec.name, address=address, command=verb, detail=error.message),
                tenant_id="",
            )
            uow.commit()
        log.warning("pmta queue command failed", extra={"node": node.spec.name, "address": address, "verb": verb})
        return f"{verb} failed: {error.message}"


def _sortable_id() -> str:
    """Ordered by creation (wall clock, nanoseconds) then random: two deploys in the same instant of the service's
    clock still list in the order they happened."""
    return f"{time.time_ns():016x}-{secrets.token_hex(9)}"


def _unreachable(error: PmtaNodeError) -> bool:
    return error.reason in ("PMTA_NODE_UNREACHABLE", "PMTA_NODE_HOST_KEY_MISMATCH", "PMTA_NODE_AUTH_REFUSED")


def _node_ip(ip: PoolIp, window: int | None) -> NodeIp:
    caps = {_CAPPED_GROUPS[group]: cap for group, cap in ip.provider_caps.items() if group in _CAPPED_GROUPS}
    state = IpState(ip.state) if ip.state in IpState.__members__ else IpState.PAUSED
    return NodeIp(
        address=ip.address,
        helo_hostname=ip.helo_hostname,
        tenant_id=ip.tenant_id,
        state=state,
        daily_quota=ip.daily_quota,
        hourly_quota=ip.hourly_quota,
        provider_caps=caps,
        sending_window_hours=window,
    )
