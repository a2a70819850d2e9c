"""Maps the errors of libs.errors to google.rpc.Status with ErrorInfo / BadRequest / ResourceInfo.

REST callers get them through Envoy's transcoder (convert_grpc_status) as JSON bodies with the right
HTTP status; gRPC callers get the same rich status.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from libs import errors

ERROR_DOMAIN = "emailengine"

_CODES: dict[type[errors.ServiceError], int] = {
    errors.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.AlreadyExists: code_pb2.ALREADY_EXISTS,
    errors.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    errors.PermissionDenied: code_pb2.PERMISSION_DENIED,
    errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
    errors.Unavailable: code_pb2.UNAVAILABLE,
    errors.Aborted: code_pb2.ABORTED,
    errors.ResourceExhausted: code_pb2.RESOURCE_EXHAUSTED,
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: errors.ServiceError, service: str) -> grpc.Status:
    code = next((c for cls, c in _CODES.items() if isinstance(error, cls)), code_pb2.UNKNOWN)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=f"{service}.{ERROR_DOMAIN}", metadata=error.metadata
            )
        )
    ]
    if isinstance(error, errors.InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, errors.ResourceExhausted):
        delay = duration_pb2.Duration()
        delay.FromSeconds(int(error.retry_after_seconds + 0.999))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if isinstance(error, errors.NotFound | errors.AlreadyExists):
        details.append(
            _pack(error_details_pb2.ResourceInfo(resource_type=error.resource_type, resource_name=error.resource_name))
        )
    return rpc_status.to_status(status_pb2.Status(code=code, message=error.message, details=details))


def internal_status(reference: str) -> grpc.Status:
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INTERNAL,
            message=f"internal error; reference {reference} in the service log",
            details=[_pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))],
        )
    )
