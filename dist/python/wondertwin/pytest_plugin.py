"""pytest plugin (entry point `pytest11`): a world of twins per test.

    @pytest.mark.twins("stripe", "resend")
    def test_signup(twins):
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": twins.url("stripe")})

Without the marker, a test gets every twin the host serves. Each test's
tenant is removed after it, so tests never see each other's state, clock or
faults, under pytest-xdist too (each worker uses one host: `WT_URL`'s, or
its own).
"""

from __future__ import annotations

import pytest

from . import Twins


def pytest_configure(config):
    config.addinivalue_line("markers", "twins(*names): the twins this test's world holds")


@pytest.fixture
def twins(request):
    marker = request.node.get_closest_marker("twins")
    names = list(marker.args) if marker else None
    world = Twins(names)
    try:
        yield world
    finally:
        world.close()
