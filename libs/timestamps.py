"""Timestamps a caller sends: a protobuf Timestamp is only a pair of integers on the wire, so an out-of-range one
(negative nanos, year 10000) must be refused with the field named rather than fail deep inside a use case."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from libs.errors import InvalidArgument

# The range google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_MIN_SECONDS = -62135596800
_MAX_SECONDS = 253402300799


def datetime_from(stamp: Timestamp, *, field: str) -> datetime:
    """The UTC datetime of a request's Timestamp, or INVALID_ARGUMENT naming `field`."""
    if not 0 <= stamp.nanos <= 999_999_999 or not _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS:
        raise InvalidArgument(field, "must be a valid time: years 1 to 9999, nanos 0 to 999999999")
    return stamp.ToDatetime(tzinfo=UTC)
