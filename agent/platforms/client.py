"""What both platform clients share: one session, dispatch to the endpoint's mode, downloads, close().

A client knows its platform's conventions (envelopes, status words, clusters); a mode (``agent.platforms.modes``)
knows one endpoint's request and poll route. ``submit`` and ``poll`` only look the mode up in the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from agent.platforms import download as _download
from agent.platforms.base import Download, PlatformSettings, RemoteOutput, SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError
from agent.platforms.session import PlatformHTTP

if TYPE_CHECKING:
    from agent.platforms.modes.common import Mode


class HttpClientBase:
    kind = ""  # easyai | haiyi
    label = ""  # the platform's name in messages
    supports_cancel = False

    def __init__(
        self, name: str, cfg: PlatformSettings, api_key: SecretStr | None, *, user_agent: str | None = None
    ) -> None:
        self.name = name
        self.http = PlatformHTTP(cfg, api_key, user_agent=user_agent)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.http.base_url!r})"

    def mode(self, endpoint: str) -> Mode:
        """The registered mode of one of this platform's endpoints; PermanentError for any other endpoint."""
        from agent.platforms.modes import MODES  # at call time: the mode modules import the clients' helpers

        mode = MODES.get(endpoint)
        if mode is None or mode.kind != self.kind:
            own = ", ".join(e for e, m in MODES.items() if m.kind == self.kind)
            raise PermanentError(f"{self.label} has no endpoint {endpoint!r} ({own})", kind="error")
        return mode

    def submit(self, req: SubmitRequest) -> SubmitResult:
        return self.mode(req.profile.endpoint).submit(self, req)

    def poll(self, task_id: str, endpoint: str) -> TaskStatus:
        """The status of a task, asked the way the endpoint it was submitted with is polled."""
        return self.mode(endpoint).poll(self, str(task_id))

    def cancel(self, task_id: str, endpoint: str) -> None:
        raise PermanentError(f"{self.label} has no cancel endpoint", kind="error")

    def probe(self) -> None:
        raise NotImplementedError

    def verify(self) -> str:
        raise NotImplementedError

    @property
    def server_date(self) -> str | None:
        return self.http.server_date

    def download(self, output: RemoteOutput, dest: Path) -> Download:
        return _download.download(self.http, output, dest)

    def close(self) -> None:
        self.http.close()
