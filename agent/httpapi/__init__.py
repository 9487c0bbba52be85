"""The local HTTP API (and Server-Sent Events): a small threaded stdlib server, light enough for a Pi Zero.

Bound to loopback by default; a request from any other address needs ``Authorization: Bearer <token>``
(``[http] token_file``). One module per concern:

| module | what |
|---|---|
| ``api.py`` | ``HttpApi``, the service: start / stop / alive, its names and origins, the token |
| ``server.py`` | the threaded server: connection admission (``limits.py``) and the per-request read deadline |
| ``limits.py`` | connection and event-stream slots: per-address caps, slots kept for the device's own clients |
| ``guard.py`` | what a request must show: framing, Host / Origin, the same-origin proof, a JSON body |
| ``handler.py`` | the routes: requests become ``Command``\\ s for the core |
| ``files.py`` | a job's files, served only as regular files really inside the job's folder |
| ``sse.py`` | ``GET /api/events``, limited apart from API calls |
"""

from agent.httpapi.api import HttpApi
from agent.httpapi.guard import SAME_ORIGIN_PROOF
from agent.httpapi.limits import MAX_CONNECTIONS

__all__ = ["HttpApi", "MAX_CONNECTIONS", "SAME_ORIGIN_PROOF"]
