"""Putting a picture where a platform can fetch it by URL (Haiyi generate.image takes reference images only as
publicly reachable URLs; an EasyAI workflow may take its image as a link instead of inline data).

Where the picture goes, first that applies:

1. the platform's own upload route (Haiyi ``POST /openapi/v1/file/upload``), tried by the mode;
2. ``upload_url``: an upload target of the booth owner's (``POST`` multipart ``file``, answering JSON with a
   ``url``, at the top level or under ``data``, the shape Haiyi's route has); the API key goes along only when it
   is on the platform's own origin;
3. ``public_dir`` + ``public_base_url``: the file is written into a folder a web server publishes, named by its
   content hash, and the URL is ``<public_base_url>/<name>``.

With none of them set the job fails with a message that names the keys to set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from agent.durable import write_durable
from agent.platforms.errors import PermanentError
from agent.platforms.replies import as_dict, as_str
from agent.platforms.session import PlatformHTTP

_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


class ImageHost:
    """One platform's configured fallback for picture URLs (``upload_url``, ``public_dir`` + ``public_base_url``)."""

    def __init__(self, platform: str, cfg: Any) -> None:
        self.platform = platform
        self.upload_url: str | None = getattr(cfg, "upload_url", None)
        self.public_dir: Path | None = getattr(cfg, "public_dir", None)
        self.public_base_url: str | None = getattr(cfg, "public_base_url", None)

    @property
    def configured(self) -> bool:
        return bool(self.upload_url) or (self.public_dir is not None and bool(self.public_base_url))

    def missing(self, why: str) -> PermanentError:
        return PermanentError(
            f"{why}; set platforms.{self.platform}.upload_url, or public_dir and public_base_url, so the booth can "
            "give the platform a public URL for the picture",
            kind="error",
        )

    def url_for(self, http: PlatformHTTP, name: str, data: bytes, content_type: str, why: str) -> str:
        """A public URL serving ``data``; PermanentError naming the keys to set when none is configured."""
        if self.upload_url:
            reply = http.post(self.upload_url, files={"file": (name, data, content_type)}).body
            body = as_dict(reply)
            url = as_str(body.get("url")) or as_str(as_dict(body.get("data")).get("url"))
            if url is None:
                raise PermanentError(f"the upload target {http.preview(self.upload_url, 80)} answered without a url")
            return url
        if self.public_dir is not None and self.public_base_url:
            digest = hashlib.sha256(data).hexdigest()[:32]
            fname = digest + _SUFFIX.get(content_type, Path(name).suffix or ".bin")
            target = self.public_dir / fname
            if not target.is_file():
                self.public_dir.mkdir(parents=True, exist_ok=True)
                write_durable(target, data, sync_dir=False)
            return f"{self.public_base_url.rstrip('/')}/{fname}"
        raise self.missing(why)
