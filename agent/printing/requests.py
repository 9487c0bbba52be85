"""A print request from the local HTTP API: `POST /api/jobs/<id>/print {"copies"?}` as a Command."""

from __future__ import annotations

from typing import Any

from agent.commands import Command


def print_command(body: dict[str, Any], job_id: str, *, own_client: bool) -> Command:
    """`copies` is checked by the print service (one place for the limits); the kiosk on this booth is a guest."""
    source = "kiosk" if own_client and body.get("source") == "kiosk" else "http"
    rid = body.get("request_id")
    params = {"copies": body["copies"]} if "copies" in body else {}
    return Command("print", source, job_id=job_id, params=params, request_id=rid if isinstance(rid, str) else None)
