"""Fetching one output: streamed to a temp file next to its final name with the size cap enforced, its type proven
from the first bytes, fsynced and renamed, so a result on disk is always whole.

Output links are usually signed object-store URLs on another host that expire: a 401/403/410 from there means
"the link expired", not "the key is wrong" (only a 401 from the platform's own origin is an AuthError).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from agent.durable import fsync_dir
from agent.platforms.base import Download, RemoteOutput
from agent.platforms.errors import AuthError, PermanentError, error_for_exception
from agent.platforms.media import final_path, media_type_of, output_type, suffix_for
from agent.platforms.session import PlatformHTTP

CHUNK_BYTES = 64 * 1024
SNIFF_BYTES = 64


def download(http: PlatformHTTP, output: RemoteOutput, dest: Path) -> Download:
    """Stream one output next to ``dest`` (size cap, type check), fsync, rename; return what was written."""
    if output.type == "text":
        raise ValueError("a text output is written by the worker, not downloaded")
    if not output.url:
        raise PermanentError("output has no URL to download", kind="output")
    url = http.resolve(output.url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with http.stream_output(url) as resp:
            return _save(http, resp, output, dest)
    except httpx.HTTPError as e:
        raise http.masked(error_for_exception(e, httpx.URL(url).host)) from None


def _save(http: PlatformHTTP, resp: httpx.Response, output: RemoteOutput, dest: Path) -> Download:
    status = resp.status_code
    if status == 401 and http.is_own(resp.url):
        raise AuthError(f"HTTP 401 from {http.host} while downloading an output", status=401, kind="auth")
    if status in (401, 403, 410):
        # A signed link that expired answers 403 (S3/OSS/COS) or 410: the key is not the problem.
        raise PermanentError(f"output link expired or forbidden (HTTP {status})", status=status, kind="output")
    if status >= 400:
        err = http.error_from_response(resp, resp.read()[:1024])
        assert err is not None
        if isinstance(err, PermanentError):
            err = PermanentError(f"output download failed: {err.message}", status=status, kind="output")
        raise err
    cap_mb = http.max_download_mb
    cap = cap_mb * 1024 * 1024
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > cap:
        raise PermanentError(f"output larger than {cap_mb} MB ({int(length)} bytes announced)", kind="output")
    declared = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()

    chunks = resp.iter_bytes(CHUNK_BYTES)
    head = _read_head(chunks, SNIFF_BYTES)
    media_type = media_type_of(declared, head)
    path = final_path(dest, suffix_for(media_type))
    size = _write_whole(path, _chain(head, chunks), cap, cap_mb)
    if size == 0:
        raise PermanentError(f"output from {resp.url.host} is empty", kind="output")
    return Download(path=path, content_type=media_type, size=size, type=output_type(media_type, output.type))


def _write_whole(path: Path, chunks: Iterator[bytes], cap: int, cap_mb: int) -> int:
    """Temp file, fsync, rename over ``path``, fsync the folder; nothing left behind on any error. -> bytes
    written (an empty stream writes nothing and returns 0)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise PermanentError(f"output larger than {cap_mb} MB", kind="output")
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if size == 0:
            os.unlink(tmp_name)
            return 0
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent, strict=False)  # the file itself is durable; a folder that cannot sync is not fatal
    return size


def _read_head(chunks: Iterator[bytes], want: int) -> bytes:
    """At least ``want`` bytes from the stream (fewer only at its end), for sniffing."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= want:
            break
    return head


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
