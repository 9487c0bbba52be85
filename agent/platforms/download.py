"""Fetching one output: streamed to a temp file next to its final name, its type proven from the first bytes, fsynced
and renamed, so a result on disk is always whole. Every limit a hostile host could test is enforced here:

- a total deadline: the earlier of the caller's (the job's own) and ``download_deadline_s`` from now, on every
  socket call, headers included (transport.py); past it, ``TransientError(kind="timeout")`` "took longer than";
- ``max_downloads_per_host`` downloads per host at once (across platforms); one more raises
  ``TransientError(kind="busy", retry_after=...)`` at once instead of waiting for a slot;
- the size: ``max_download_mb`` and the caller's ``max_bytes`` (what the job may still store), counted on the
  DECODED bytes as they stream (bodies.py: a gzip bomb never expands in memory) -> ``PermanentError(kind="output")``;
- the address of the link and of every redirect hop (targets.py), at most ``MAX_REDIRECTS`` hops;
- the type, by magic bytes only (media.py): markup served as ``image/png`` is still markup.

Nothing is left behind on any failure; ENOSPC propagates as the ``OSError`` it is (the caller decides to wait).

Output links are usually signed object-store URLs on another host that expire: a 401/403/410 from there means
"the link expired", not "the key is wrong" (only a 401 from the platform's own origin is an AuthError).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from agent.durable import fsync_dir
from agent.platforms.base import Download, RemoteOutput
from agent.platforms.bodies import STEP, EncodingError, iter_decoded, read_head
from agent.platforms.errors import AuthError, PermanentError, TransientError
from agent.platforms.media import SNIFF_BYTES, final_path, media_type_of, output_type, suffix_for
from agent.platforms.session import ERROR_BODY_BYTES, PlatformHTTP
from agent.platforms.transport import DOWNLOAD_SLOTS, deadline_scope


def download(
    http: PlatformHTTP,
    output: RemoteOutput,
    dest: Path,
    *,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> Download:
    """Stream one output next to ``dest`` within ``deadline`` (a ``time.monotonic()`` instant) and ``max_bytes``;
    fsync, rename; return what was written."""
    if output.type == "text":
        raise ValueError("a text output is written by the worker, not downloaded")
    if not output.url:
        raise PermanentError("output has no URL to download", kind="output")
    url = httpx.URL(http.resolve(output.url))
    host = url.netloc.decode("ascii", "replace").lower()
    started = time.monotonic()
    own = started + http.download_deadline_s
    at = own if deadline is None else min(deadline, own)
    budget = at - started
    if budget <= 0:
        raise TransientError(f"download from {host} took longer than the time left (none)", kind="timeout")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with DOWNLOAD_SLOTS.hold(host, http.max_downloads_per_host), deadline_scope(at):
        try:
            with http.stream_output(str(url)) as resp:
                return _save(http, resp, output, dest, _cap(http, max_bytes))
        except httpx.HTTPError as e:
            raise http.no_answer(e, host, "download", at, round(budget, 1)) from None


def _cap(http: PlatformHTTP, max_bytes: int | None) -> tuple[int, str]:
    """The byte cap and how a message names it."""
    cap = http.max_download_mb * 1024 * 1024
    if max_bytes is not None and max_bytes < cap:
        return max(0, max_bytes), f"the {max(0, max_bytes)} bytes this job may still store"
    return cap, f"{http.max_download_mb} MB"


def _save(http: PlatformHTTP, resp: httpx.Response, output: RemoteOutput, dest: Path, cap: tuple[int, str]) -> Download:
    status = resp.status_code
    if status == 401 and http.is_own(resp.url):
        raise AuthError(f"HTTP 401 from {http.host} while downloading an output", status=401, kind="auth")
    if status in (401, 403, 410):
        # A signed link that expired answers 403 (S3/OSS/COS) or 410: the key is not the problem.
        raise PermanentError(f"output link expired or forbidden (HTTP {status})", status=status, kind="output")
    if status >= 400:
        err = http.error_from_response(resp, read_head(resp, ERROR_BODY_BYTES))
        assert err is not None
        if isinstance(err, PermanentError):
            err = PermanentError(f"output download failed: {err.message}", status=status, kind="output")
        raise http.masked(err)
    limit, named = cap
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and not resp.headers.get("Content-Encoding") and int(length) > limit:
        raise PermanentError(f"output larger than {named} ({int(length)} bytes announced)", kind="output")
    declared = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    try:
        chunks = iter_decoded(resp, STEP)
        head = _read_head(chunks, SNIFF_BYTES)
        media_type = media_type_of(declared, head, mask=http.mask)
        path = final_path(dest, suffix_for(media_type))
        size = _write_whole(path, _chain(head, chunks), limit, named)
    except EncodingError as e:
        raise PermanentError(f"output from {resp.url.host}: {e}", kind="output") from None
    if size == 0:
        raise PermanentError(f"output from {resp.url.host} is empty", kind="output")
    return Download(path=path, content_type=media_type, size=size, type=output_type(media_type, output.type))


def _write_whole(path: Path, chunks: Iterator[bytes], cap: int, named: str) -> int:
    """Temp file, fsync, rename over ``path``, fsync the folder; nothing left behind on any error. -> bytes
    written (an empty stream writes nothing and returns 0)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise PermanentError(f"output larger than {named}", kind="output")
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
