"""Calls to the emulated FreshBooks token endpoint the way any client makes them (shared by the tests)."""

from __future__ import annotations

import typing as t

import requests


def refresh_directly(emu: t.Any, refresh_token: str) -> requests.Response:
    """POST a refresh like any client would (consumes the token if it is live)."""
    return requests.post(
        f"{emu.url}/auth/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "redirect_uri": emu.redirect_uri,
            "refresh_token": refresh_token,
        },
        timeout=10,
    )
