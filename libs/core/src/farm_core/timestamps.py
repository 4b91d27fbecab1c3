"""Conversions between aware datetimes and protobuf Timestamps."""

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp


def to_timestamp(moment: dt.datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime."""
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(dt.UTC))
    return stamp


def from_timestamp(stamp: Timestamp) -> dt.datetime:
    """An aware UTC datetime of a protobuf Timestamp."""
    return stamp.ToDatetime(tzinfo=dt.UTC)
