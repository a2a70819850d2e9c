"""A request's Timestamp out of protobuf's range is refused with its field named, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from libs.errors import InvalidArgument
from libs.timestamps import datetime_from


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(0, -1), (0, 1_000_000_000), (253402300800, 0), (-62135596801, 0), (2**62, 0)],
)
def test_an_impossible_time_names_its_field(seconds: int, nanos: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        datetime_from(Timestamp(seconds=seconds, nanos=nanos), field="send_time")
    assert refused.value.violations[0].field == "send_time"


def test_a_valid_time_is_utc() -> None:
    assert datetime_from(Timestamp(seconds=1_700_000_000, nanos=5000), field="t") == datetime(
        2023, 11, 14, 22, 13, 20, 5, tzinfo=UTC
    )
    assert datetime_from(Timestamp(seconds=253402300799, nanos=999_999_999), field="t").year == 9999
