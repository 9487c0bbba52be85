"""The simulator's stored files (uploads and rendered outputs) and the signed URLs they are served under.

Like an object store: ``/files/<token><ext>?expires=..&sig=..`` links that expire (``url_ttl_s``, or
``expire_fast_s`` for outputs under the ``expire_fast`` quirk), plus ComfyUI-style names for ``/view`` and
``/api/view``. Only the newest ``MAX_FILES`` are kept, so a day-long demo does not fill a Pi's SD card.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import itertools
import math
import os
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.simulator.config import SimConfig
from agent.simulator.wire import BadRequest, decode_data_url, normalise_path

MAX_FILES = 2000  # oldest files are deleted beyond this


@dataclass
class StoredFile:
    """A file the simulator serves: an upload ("input") or a rendered output ("output")."""

    token: str  # the opaque part of /files/<token><ext>
    name: str  # ComfyUI-style name used by /view?filename= and Haiyi upload replies
    path: Path
    ext: str  # ".png", ".jpg", ".mp4", ...
    content_type: str
    kind: str  # "output" | "input"
    size: int
    born: float  # when it appeared (an output: when its task finished); signed URLs expire from here

    @property
    def media(self) -> str:
        major = self.content_type.split("/", 1)[0]
        if self.content_type == "image/gif" and self.kind == "output" and self.name.endswith(".gif"):
            return "video"  # the GIF fallback of a video render
        return major if major in ("image", "video", "audio") else "unknown"


def _safe_name(name: str) -> str:
    """An ASCII file name that keeps the extension ("站立人物.jpg" -> "upload.jpg")."""
    stem, dot, ext = os.path.basename(name or "").rpartition(".")
    if not dot:
        stem, ext = ext, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[-60:] or "upload"
    ext = re.sub(r"[^A-Za-z0-9]+", "", ext)[:8].lower()
    return f"{stem}.{ext}" if ext else stem


class FileStore:
    """Files by token and by name, with signing. All public methods are thread-safe."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._seq = itertools.count(1)
        self._files: dict[str, StoredFile] = {}  # token -> file
        self._by_name: dict[str, StoredFile] = {}
        self._order: collections.deque[str] = collections.deque()

    def store(
        self,
        data: bytes,
        *,
        ext: str,
        content_type: str,
        kind: str,
        name: str | None = None,
        born: float | None = None,
        prefix: str = "ComfyUI",
    ) -> StoredFile:
        token = secrets.token_hex(12)
        with self._lock:
            n = next(self._seq)
        if name is None:
            name = f"{prefix}_{n:05d}_{ext}"
        path = self.workdir / f"{token}{ext}"
        path.write_bytes(data)
        return self._register(token, name, path, ext, content_type, kind, born)

    def adopt(self, path: Path, *, content_type: str, kind: str, prefix: str, born: float) -> StoredFile:
        """Register a file already written into the work dir (a rendered video)."""
        with self._lock:
            n = next(self._seq)
        token = path.stem
        return self._register(token, f"{prefix}_{n:05d}_{path.suffix}", path, path.suffix, content_type, kind, born)

    def _register(
        self, token: str, name: str, path: Path, ext: str, content_type: str, kind: str, born: float | None
    ) -> StoredFile:
        f = StoredFile(
            token=token,
            name=name,
            path=path,
            ext=ext,
            content_type=content_type,
            kind=kind,
            size=path.stat().st_size,
            born=time.time() if born is None else born,
        )
        evicted: list[StoredFile] = []
        with self._lock:
            self._files[token] = f
            self._by_name[name] = f
            self._order.append(token)
            while len(self._order) > MAX_FILES:
                old = self._files.pop(self._order.popleft(), None)
                if old is not None:
                    if self._by_name.get(old.name) is old:
                        del self._by_name[old.name]
                    evicted.append(old)
        for old in evicted:
            old.path.unlink(missing_ok=True)
        return f

    def upload_name(self, original: str) -> str:
        return f"{secrets.token_hex(4)}_{_safe_name(original)}"

    def file_by_token(self, token: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(token)

    def file_by_name(self, name: str) -> StoredFile | None:
        with self._lock:
            return self._by_name.get(name)

    # ------------------------------------------------------------------------------------------- signed URLs

    def expires(self, f: StoredFile, cfg: SimConfig) -> str:
        """The ``expires`` value of a signed URL: whole unix seconds like real object stores, or milliseconds for
        a lifetime under a second (tests that watch a link expire need not sleep for whole seconds)."""
        ttl = cfg.expire_fast_s if (f.kind == "output" and "expire_fast" in cfg.quirks) else cfg.url_ttl_s
        if ttl >= 1:
            return str(math.ceil(f.born + ttl))
        return f"{math.ceil((f.born + ttl) * 1000) / 1000:.3f}"

    def sign(self, path: str, expires: str) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def signed_path(self, f: StoredFile, cfg: SimConfig) -> str:
        path = f"/files/{f.token}{f.ext}"
        exp = self.expires(f, cfg)
        return f"{path}?expires={exp}&sig={self.sign(path, exp)}"

    def check_signature(self, path: str, expires: str, sig: str) -> str:
        """ "ok", "expired" or "bad" for a /files/ request."""
        try:
            exp = float(expires)
        except (TypeError, ValueError):
            return "bad"
        if not math.isfinite(exp) or not hmac.compare_digest(self.sign(path, expires), sig or ""):
            return "bad"
        return "ok" if time.time() <= exp else "expired"


def read_image_ref(files: FileStore, ref: Any) -> bytes:
    """The bytes behind an image reference a client sent: a data: URL, raw base64, or one of the simulator's
    own file URLs (signed /files/ links, /view and /api/view links; any host, resolved locally).
    Nothing is ever fetched over the network: any other URL is refused with BadRequest."""
    if not isinstance(ref, str) or not ref.strip():
        raise BadRequest("image must be a non-empty string (a URL or a data: URL)")
    ref = ref.strip()
    if ref.startswith("data:"):
        return decode_data_url(ref)
    parts = urllib.parse.urlsplit(ref)
    if parts.scheme in ("http", "https", "") and (parts.path.startswith(("/files/", "/view", "/api/view"))):
        path, query = normalise_path(parts.path + ("?" + parts.query if parts.query else ""))
        m = re.fullmatch(r"/files/([0-9a-f]+)(\.[A-Za-z0-9]+)", path)
        if m:
            f = files.file_by_token(m.group(1))
            verdict = files.check_signature(path, (query.get("expires") or [""])[0], (query.get("sig") or [""])[0])
            if f is None or f.ext != m.group(2):
                raise BadRequest(f"image url not found: {ref[:120]}")
            if verdict != "ok":
                raise BadRequest(f"image url {'expired' if verdict == 'expired' else 'has a bad signature'}")
            return f.path.read_bytes()
        if path in ("/view", "/api/view"):
            f = files.file_by_name((query.get("filename") or [""])[0])
            if f is None:
                raise BadRequest(f"image url not found: {ref[:120]}")
            return f.path.read_bytes()
    if not parts.scheme and len(ref) > 64 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", ref):
        try:
            return base64.b64decode(re.sub(r"\s+", "", ref), validate=True)
        except (binascii.Error, ValueError):
            pass
    raise BadRequest(
        f"cannot fetch image {ref[:120]!r}: the simulator reads only its own file URLs and data: URLs (no network)"
    )
