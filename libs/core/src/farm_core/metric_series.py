"""Labelled counters served from 0: a series for each of a fixed set of label values."""

import itertools
from collections.abc import Iterable

from prometheus_client import Counter


def start_at_zero(counter: Counter, **label_values: Iterable[str]) -> None:
    """Has `counter` serve a series of 0 for every combination of `label_values` from the start.

    A labelled counter serves no series before its first increment, so Prometheus
    would not know a name the docs promise until its first event, and a rate over
    it (a dashboard's panel, an alert) would miss that first event: it has no
    earlier sample to rise from.
    """
    names = list(label_values)
    for values in itertools.product(*(list(label_values[name]) for name in names)):
        counter.labels(**dict(zip(names, (str(value) for value in values), strict=True)))
