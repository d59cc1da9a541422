"""How a route reaches the daemon's services: the ones ``create_app`` was given, on the app."""

from __future__ import annotations

from fastapi import Request

from monitor.wiring import Services


def services(request: Request) -> Services:
    """The services ``monitor.wiring.build_services`` made for this app."""
    found = request.app.state.services
    assert isinstance(found, Services), "the app was not made by monitor.api.app.create_app"
    return found
