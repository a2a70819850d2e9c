from __future__ import annotations

import pytest

from tests.deploy.manifests import OVERLAYS, Rendered, render


@pytest.fixture(scope="session")
def overlays() -> dict[str, Rendered]:
    """Every overlay, rendered once by `kubectl kustomize`."""
    return {name: render(name) for name in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, overlays: dict[str, Rendered]) -> Rendered:
    return overlays[request.param]
