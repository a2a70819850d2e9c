"""Renders the Envoy gateway config from the settings: one listener for gRPC and REST, JWT at the edge.

Follows reference/envoy-auth-and-errors.md: transcoder before jwt_authn, rules written with gRPC paths
that end in a catch-all requirement (fails closed), JSON bodies for Envoy's own REST errors without
touching gRPC, health-checked clusters that go to 503 at once when a service stops serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from libs.config import SERVICE_NAMES, Settings, is_ip_literal, split_host_port
from libs.service_catalog import grpc_service_of, grpc_services_of

PLATFORM_SERVICE = "emailengine.platform.v1.PlatformService"
READ_RETRIES = {
    "retry_on": "unavailable,reset,connect-failure,refused-stream",
    "num_retries": 2,
    "per_try_timeout": "20s",
    "retry_back_off": {"base_interval": "0.05s", "max_interval": "0.5s"},
    # A retry goes to another replica than the ones already tried: a replica that just died is still in the
    # cluster until its health check fails (up to a second), and round robin alone may pick it again.
    "retry_host_predicate": [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
            },
        }
    ],
    "host_selection_retry_max_attempts": 5,
}
JWT_PROVIDER = "email_engine"


def _cluster(name: str, hosts: list[tuple[str, int]], health_service: str) -> dict[str, Any]:
    return {
        "name": name,
        # Kubernetes Service names are resolved (and re-resolved) by DNS; literal addresses are static.
        "type": "STATIC" if all(is_ip_literal(h) for h, _ in hosts) else "STRICT_DNS",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        # 0 % panic threshold: a service that is not serving gets 503 "no healthy upstream" at once.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "1s",
                "no_traffic_interval": "1s",
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": health_service},
            }
        ],
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": h, "port_value": p}}}} for h, p in hosts
                    ]
                }
            ],
        },
    }


def _status_mapper(http_status: int, grpc_code: int) -> dict[str, Any]:
    return {
        "filter": {
            "status_code_filter": {
                "comparison": {"op": "EQ", "value": {"default_value": http_status, "runtime_key": f"lr.c{http_status}"}}
            }
        },
        "body_format_override": {
            "json_format": {"code": grpc_code, "message": "%LOCAL_REPLY_BODY%"},
            "content_type": "application/json",
        },
    }


def read_methods(api: str) -> list[str]:
    """The gRPC paths of an API's reads (GET bindings and `read_only` methods), from the contract."""
    from google.protobuf import descriptor_pool

    from libs.interceptor import is_read_method

    try:
        service = descriptor_pool.Default().FindServiceByName(api)
    except KeyError:
        return []
    return [path for m in service.methods if is_read_method(path := f"/{api}/{m.name}")]


def render(settings: Settings, descriptor: Path) -> dict[str, Any]:
    # Each service where its EE_*_ADDRESS says (a Kubernetes Service name in a cluster), else this host.
    upstream = {name: split_host_port(settings.grpc_address(name)) for name in SERVICE_NAMES}
    clusters = [_cluster(name, [upstream[name]], grpc_service_of(name)) for name in SERVICE_NAMES]
    # PlatformService runs in every service: balanced over whichever are up.
    clusters.append(_cluster("platform", [upstream[n] for n in SERVICE_NAMES], ""))
    routes: list[dict[str, Any]] = []
    for name in SERVICE_NAMES:
        for api in grpc_services_of(name):
            # Reads are safe to send again: a replica that stopped or a connection reset mid-call costs a retry
            # on another replica, not an error. Writes go once (the caller decides; a create is never doubled).
            routes += [
                {"match": {"path": path}, "route": {"cluster": name, "timeout": "60s", "retry_policy": READ_RETRIES}}
                for path in read_methods(api)
            ]
            routes.append({"match": {"prefix": f"/{api}/"}, "route": {"cluster": name, "timeout": "60s"}})
    routes += [
        {"match": {"prefix": f"/{PLATFORM_SERVICE}/"}, "route": {"cluster": "platform", "timeout": "15s"}},
        {"match": {"prefix": "/grpc.health.v1.Health/"}, "route": {"cluster": "platform", "timeout": "5s"}},
    ]
    transcoded_services = [api for n in SERVICE_NAMES for api in grpc_services_of(n)] + [PLATFORM_SERVICE]
    jwks = settings.jwks_path
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "api",
        "codec_type": "AUTO",
        # Slow or idle clients cost a connection, not a worker: headers within 10 s, no stream idle past 5 min.
        "request_headers_timeout": "10s",
        "stream_idle_timeout": "300s",
        "common_http_protocol_options": {"idle_timeout": "3600s", "headers_with_underscores_action": "REJECT_REQUEST"},
        "http2_protocol_options": {"max_concurrent_streams": 256},
        "max_request_headers_kb": 64,
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {
                        "json_format": {
                            "service": "envoy",
                            "time": "%START_TIME%",
                            "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
                            "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                            "status": "%RESPONSE_CODE%",
                            "grpc_status": "%GRPC_STATUS%",
                            "details": "%RESPONSE_CODE_DETAILS%",
                            "duration_ms": "%DURATION%",
                            "sub": "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt_payload:sub)%",
                        }
                    },
                },
            }
        ],
        "local_reply_config": {
            "mappers": [
                {
                    # Native gRPC callers: keep the plain text (it becomes grpc-message).
                    "filter": {
                        "and_filter": {
                            "filters": [
                                {
                                    "header_filter": {
                                        "header": {
                                            "name": "content-type",
                                            "string_match": {"prefix": "application/grpc"},
                                        }
                                    }
                                },
                                {
                                    "header_filter": {
                                        "header": {
                                            "name": "x-envoy-original-path",
                                            "present_match": True,
                                            "invert_match": True,
                                        }
                                    }
                                },
                            ]
                        }
                    },
                    "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"}},
                },
                # REST: `code` is the google.rpc.Code, as in the bodies of transcoded service errors.
                _status_mapper(400, 3),
                _status_mapper(401, 16),
                _status_mapper(403, 7),
                _status_mapper(404, 5),
                _status_mapper(413, 3),
                _status_mapper(503, 14),
                _status_mapper(504, 4),
            ],
            "body_format": {
                "json_format": {"code": "%RESPONSE_CODE%", "message": "%LOCAL_REPLY_BODY%"},
                "content_type": "application/json",
            },
        },
        "route_config": {
            "name": "api",
            "virtual_hosts": [{"name": "api", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.grpc_json_transcoder",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                    "proto_descriptor": str(descriptor),
                    "services": transcoded_services,
                    "convert_grpc_status": True,
                    "url_unescape_spec": "ALL_CHARACTERS",
                    "print_options": {"always_print_primitive_fields": True, "preserve_proto_field_names": True},
                    "request_validation_options": {
                        "reject_unknown_method": True,
                        "reject_unknown_query_parameters": True,
                        "reject_binding_body_field_collisions": True,
                    },
                    # The whole body is buffered here, before jwt_authn: no more than the services accept.
                    "max_request_body_size": settings.max_request_bytes,
                    "max_response_body_size": 64 * 1024 * 1024,
                },
            },
            {
                "name": "envoy.filters.http.jwt_authn",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                    "providers": {
                        JWT_PROVIDER: {
                            "issuer": settings.jwt_issuer,
                            "audiences": [settings.jwt_audience],
                            "local_jwks": {"filename": str(jwks)},
                            "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                            "forward": True,
                            "payload_in_metadata": "jwt_payload",
                            # A token seen before is not verified again (its signature is the cost), though its
                            # expiry and audience still are on every request.
                            "jwt_cache_config": {"jwt_cache_size": 1000},
                        }
                    },
                    # gRPC paths: the transcoder runs first, so REST calls arrive here rewritten.
                    "rules": [
                        {"match": {"path": f"/{PLATFORM_SERVICE}/GetHealth"}},
                        {"match": {"path": "/grpc.health.v1.Health/Check"}},
                        {"match": {"prefix": "/"}, "requires": {"provider_name": JWT_PROVIDER}},
                    ],
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
    }
    return {
        # Loopback only; and never reachable by a request the product makes for a user (libs.outbound).
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": settings.envoy_admin_port}}},
        "overload_manager": _overload_manager(settings),
        "static_resources": {
            "listeners": [
                {
                    "name": "api",
                    "address": {"socket_address": {"address": settings.bind_host, "port_value": settings.gateway_port}},
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ],
            "clusters": clusters,
        },
    }


def _overload_manager(settings: Settings) -> dict[str, Any]:
    """A cap on open connections, and load shed (then refused) before Envoy's heap runs out."""
    heap = "envoy.resource_monitors.fixed_heap"
    return {
        "refresh_interval": "0.25s",
        "resource_monitors": [
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": settings.gateway_max_connections,
                },
            },
            {
                "name": heap,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                    "max_heap_size_bytes": settings.gateway_max_heap_bytes,
                },
            },
        ],
        "actions": [
            {"name": "envoy.overload_actions.shrink_heap", "triggers": [{"name": heap, "threshold": {"value": 0.9}}]},
            {
                "name": "envoy.overload_actions.stop_accepting_requests",
                "triggers": [{"name": heap, "threshold": {"value": 0.98}}],
            },
        ],
    }


def write_config(settings: Settings, descriptor: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(render(settings, descriptor), sort_keys=False))
    return target
