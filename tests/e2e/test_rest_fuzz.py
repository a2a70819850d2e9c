"""Hostile REST input, generated: every RPC with an HTTP binding, through the real Envoy, with an operator's token
and an admin's. Whatever the path values, query parameters and JSON bodies, the answer is never a 5xx from a
service (never INTERNAL, never a stack trace) and every error is a `google.rpc.Status` JSON body.

The inputs come from the contract itself (the `google.api.http` options and the request messages' fields), so a
new RPC is fuzzed without touching this file. The seed is fixed, so CI runs the same examples every time.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

# The generated modules are imported for their descriptors: the bindings are read from the pool.
import emailengine.campaign.v1.campaign_service_pb2
import emailengine.campaign.v1.delivery_service_pb2
import emailengine.ippool.v1.ippool_service_pb2
import emailengine.notifier.v1.notifier_service_pb2
import emailengine.platform.v1.platform_service_pb2
import emailengine.reputation.v1.reputation_service_pb2  # noqa: F401
from tests.harness.servers import Stack

pytestmark = pytest.mark.e2e

# Times the bindings (67 today): at least 10 000 requests in all. EE_FUZZ_EXAMPLES lowers it for a quick local run.
EXAMPLES_PER_BINDING = int(os.environ.get("EE_FUZZ_EXAMPLES", "250"))
FUZZ_SEED = 20261207


@dataclass(frozen=True)
class Binding:
    method: MethodDescriptor
    verb: str
    template: str
    body: str  # "", "*" or a field name

    @property
    def name(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}"

    def path_fields(self) -> list[str]:
        names = []
        for part in self.template.split("{")[1:]:
            names.append(part.split("}")[0].split("=")[0])
        return names


def bindings() -> list[Binding]:
    found = []
    pool = descriptor_pool.Default()
    for package in ("ippool", "reputation", "campaign", "notifier", "platform"):
        for file_name in _files(package):
            file = pool.FindFileByName(file_name)
            for service in file.services_by_name.values():
                for method in service.methods:
                    if method.client_streaming or method.server_streaming:
                        continue  # no REST binding for streams
                    rule = method.GetOptions().Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    if verb and verb != "custom":
                        found.append(Binding(method, verb.upper(), getattr(rule, verb), rule.body))
    return found


def _files(package: str) -> Iterator[str]:
    pool = descriptor_pool.Default()
    for name in (f"{package}_service", "delivery_service"):
        try:
            yield pool.FindFileByName(f"emailengine/{package}/v1/{name}.proto").name
        except KeyError:
            continue


# -- values --------------------------------------------------------------------------------------------------

NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "192.0.2.10",
            "192.0.2.300",
            "::1",
            "sos-expat",
            "ulixai",
            "../../etc/passwd",
            "%00",
            "a" * 300,
            "0x7f000001",
            "http://127.0.0.1:9901/quitquitquit",
            "'; DROP TABLE ips; --",
            "\u202e\u0000\ufeff",
            "1e309",
            "-1",
            "eyJ0IjoxfQ",
        ]
    ),
)
NASTY_INT = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31), 2**53 + 1]),
)
JSON_LEAF = st.one_of(st.none(), st.booleans(), NASTY_INT, st.floats(allow_nan=False), NASTY_TEXT)
ANY_JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(NASTY_TEXT, inner, max_size=4)),
    max_leaves=12,
)


def field_value(field: FieldDescriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value shaped like the field most of the time (so the call gets past JSON parsing), anything otherwise."""
    if field.type == FieldDescriptor.TYPE_MESSAGE and depth < 3:
        shaped = message_value(field.message_type, depth + 1)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        names = [v.name for v in field.enum_type.values]
        shaped = st.one_of(st.sampled_from(names), NASTY_INT, NASTY_TEXT)
    elif field.type in (FieldDescriptor.TYPE_BOOL,):
        shaped = st.booleans()
    elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        shaped = st.one_of(st.floats(allow_nan=False), st.sampled_from(["Infinity", "-Infinity", "NaN"]))
    elif field.type == FieldDescriptor.TYPE_STRING:
        shaped = NASTY_TEXT
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        shaped = ANY_JSON
    else:
        shaped = NASTY_INT
    if field.is_repeated:
        shaped = st.lists(shaped, max_size=5)
    return st.one_of(shaped, shaped, shaped, ANY_JSON)


def message_value(message: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    fields = {f.name: field_value(f, depth) for f in message.fields}
    return st.fixed_dictionaries({}, optional=fields)


def path_segment() -> st.SearchStrategy[str]:
    return NASTY_TEXT.filter(lambda s: s not in ("", ".", "..")).map(lambda s: quote(s, safe=""))


@st.composite
def rest_call(draw: st.DrawFn, binding: Binding) -> tuple[str, str, dict[str, str], bytes | None]:
    path = binding.template
    for name in binding.path_fields():
        start = path.index("{" + name)
        end = path.index("}", start)
        path = path[:start] + draw(path_segment()) + path[end + 1 :]
    params: dict[str, str] = {}
    request_type = binding.method.input_type
    path_fields = set(binding.path_fields())
    if binding.verb == "GET" or (binding.body and binding.body != "*"):
        scalar = [
            f
            for f in request_type.fields
            if f.name not in path_fields and f.name != binding.body and f.type != FieldDescriptor.TYPE_MESSAGE
        ]
        for field in draw(st.lists(st.sampled_from(scalar), max_size=3, unique=True)) if scalar else []:
            params[field.name] = str(draw(st.one_of(NASTY_TEXT, NASTY_INT)))
        if draw(st.integers(0, 9)) == 0:
            params[draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))] = "x"
    body: bytes | None = None
    if binding.body:
        shape = (
            message_value(request_type)
            if binding.body == "*"
            else field_value(request_type.fields_by_name[binding.body])
        )
        choice = draw(st.integers(0, 19))
        if choice == 0:
            body = draw(st.binary(max_size=64))
        elif choice == 1:
            body = ("[" * 5000 + "]" * 5000).encode()  # deeply nested
        else:
            body = json.dumps(draw(st.one_of(shape, shape, shape, ANY_JSON))).encode()
    return binding.verb, path, params, body


# -- the test ------------------------------------------------------------------------------------------------

BINDINGS = bindings()


@pytest.fixture(scope="module")
def callers(stack: Stack) -> dict[str, str]:
    return {
        "operator": stack.token("--tenant", "sos-expat"),
        "admin": stack.token("--admin"),
    }


def check_answer(binding: Binding, reply: httpx.Response, sent: str) -> None:
    where = f"{binding.name}: {sent} -> {reply.status_code} {reply.text[:300]}"
    assert reply.status_code < 500 or (reply.status_code == 503 and _is_status(reply)), where
    assert "Traceback" not in reply.text and 'File "' not in reply.text, where
    if reply.status_code >= 400:
        assert _is_status(reply), where


def _is_status(reply: httpx.Response) -> bool:
    try:
        body = reply.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("code"), int) and isinstance(body.get("message"), str)


def test_every_binding_is_fuzzed() -> None:
    assert len(BINDINGS) >= 40, [b.name for b in BINDINGS]
    if "EE_FUZZ_EXAMPLES" not in os.environ:
        assert len(BINDINGS) * EXAMPLES_PER_BINDING >= 10_000


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.name)
def test_rest_input_never_breaks_a_service(binding: Binding, stack: Stack, callers: dict[str, str]) -> None:
    client = httpx.Client(base_url=stack.gateway, timeout=30)

    @seed(FUZZ_SEED)
    @settings(
        max_examples=EXAMPLES_PER_BINDING,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(call=rest_call(binding), who=st.sampled_from(["operator", "admin"]))
    def run(call: tuple[str, str, dict[str, str], bytes | None], who: str) -> None:
        verb, path, params, body = call
        headers = {"Authorization": f"Bearer {callers[who]}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        reply = client.request(verb, path, params=params, content=body, headers=headers)
        check_answer(binding, reply, f"{who} {verb} {path} {params} {(body or b'')[:200]!r}")

    try:
        run()
    finally:
        client.close()
