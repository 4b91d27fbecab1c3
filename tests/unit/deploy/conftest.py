"""Fixtures of the deployment-file tests."""

import pytest

from tests.unit.deploy.manifests import Manifests, load_objects


@pytest.fixture(scope="module")
def manifests() -> Manifests:
    """deploy/k8s's objects, read once per module."""
    return Manifests(load_objects())
