"""Media types of outputs: guessed from a name, proven by the first bytes, and the file suffix each one is saved with.

Only the bytes decide: a PNG served as ``application/octet-stream`` or ``video/mp4`` is still a PNG, and a web page
or an SVG served as ``image/png``, ``video/mp4`` or with no type at all is still markup (refused: a document that
can carry script is never stored or served as a result). Bytes that prove no known image, video or audio format are
refused whatever the declared type says (3D: binary glTF only).
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable
from pathlib import Path

import httpx

from agent.platforms.base import OutputType
from agent.platforms.errors import PermanentError, one_line
from agent.redact import bound

EXTENSION_TYPES: dict[str, OutputType] = {
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".webp": "image",
    ".bmp": "image",
    ".avif": "image",
    ".heic": "image",
    ".tif": "image",
    ".tiff": "image",
    ".mp4": "video",
    ".webm": "video",
    ".gif": "video",
    ".mov": "video",
    ".mkv": "video",
    ".avi": "video",
    ".wav": "audio",
    ".mp3": "audio",
    ".flac": "audio",
    ".ogg": "audio",
    ".m4a": "audio",
    ".aac": "audio",
    ".glb": "3d",
    ".gltf": "3d",
    ".obj": "3d",
    ".fbx": "3d",
    ".ply": "3d",
    ".stl": "3d",
}

SUFFIX_FOR_TYPE = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/avif": ".avif",
    "image/heic": ".heic",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "model/gltf-binary": ".glb",
    "model/gltf+json": ".gltf",
    "model/obj": ".obj",
    "model/stl": ".stl",
}
MEDIA_FAMILIES: dict[str, OutputType] = {"image": "image", "video": "video", "audio": "audio", "model": "3d"}
SNIFF_BYTES = 1024  # how much of a download is read before its type is decided


def type_from_name(name_or_url: str) -> OutputType:
    """Output type guessed from a file name or URL (its path, else a ``filename=`` query parameter)."""
    try:
        url = httpx.URL(name_or_url)
        candidates = [url.path, url.params.get("filename") or ""]
    except Exception:  # not a URL at all: a bare name
        candidates = [name_or_url]
    for cand in candidates:
        suffix = os.path.splitext(cand.lower())[1]
        if suffix in EXTENSION_TYPES:
            return EXTENSION_TYPES[suffix]
    return "unknown"


def sniff(head: bytes) -> str | None:
    """The media type the first bytes prove; ``image/svg+xml`` or ``text/html`` for markup of any kind; else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])
    if len(head) >= 12 and head[:2] == b"\x00\x00" and int.from_bytes(head[:4], "big") >= 8:
        box = head[4:8]  # an ISO base media (MP4, MOV, HEIF, AVIF, M4A) box: a small size, then its type
        if box == b"ftyp":
            return _ftyp_brand(head[8:12])
        if box in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
            return "video/quicktime"  # an old QuickTime movie without ftyp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] not in (0xFE, 0xFF):
        # an MPEG audio frame sync (0xFFFE/0xFFFF are UTF-16 byte order marks, not frames)
        return "audio/aac" if head[1] & 0xF6 == 0xF0 else "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"glTF"):
        return "model/gltf-binary"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"BM") and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADERS:
        return "image/bmp"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    if text.startswith(b"<"):  # any markup: a page, a script, a comment, an SVG after a long preamble, ...
        return "image/svg+xml" if text.startswith(b"<?xml") or b"<svg" in text else "text/html"
    return None


_BMP_HEADERS = frozenset({12, 40, 52, 56, 64, 108, 124})  # the DIB header sizes Windows ever wrote


def _ftyp_brand(brand: bytes) -> str:
    if brand in (b"avif", b"avis"):
        return "image/avif"
    if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
        return "image/heic"
    if brand == b"qt  ":
        return "video/quicktime"
    if brand in (b"M4A ", b"M4B ", b"M4P ", b"F4A "):
        return "audio/mp4"
    return "video/mp4"  # isom, mp41, mp42, avc1, dash, 3gp*, M4V, ...


def media_type_of(declared: str, head: bytes, *, mask: Callable[[str], str]) -> str:
    """The real type of a download, proven by its first bytes (the declared type only names it in messages), or
    PermanentError saying why it is not media. ``mask`` masks the key in the quoted start of a web page."""
    sniffed = sniff(head)
    shown = declared or "no Content-Type"
    if sniffed == "image/svg+xml":
        # SVG is a document that can carry script: never stored or served as a result
        raise PermanentError(f"output is SVG/XML, not a raster image ({shown})", kind="output")
    if sniffed == "text/html":
        start = bound(mask(one_line(head[:1024].decode("utf-8", "replace"))), 80)
        raise PermanentError(f"output is a web page, not media (text/html, sent as {shown}): {start!r}", kind="output")
    if sniffed is not None:
        return sniffed  # the bytes decide: a mislabelled PNG is still a PNG
    raise PermanentError(
        f"output is not a recognisable image, video or audio file ({shown}; its first bytes prove no media type)",
        kind="output",
    )


def suffix_for(media_type: str) -> str:
    return SUFFIX_FOR_TYPE.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"


def final_path(dest: Path, suffix: str) -> Path:
    if dest.suffix.lower() in EXTENSION_TYPES or dest.suffix.lower() == ".bin":
        return dest.with_suffix(suffix)
    return dest.with_name(dest.name + suffix)


def output_type(media_type: str, announced: OutputType) -> OutputType:
    """What a downloaded file is, from its proven media type (and what the platform announced it as)."""
    if media_type == "image/gif" and announced == "video":
        return "video"  # the animated-GIF stand-in for a video render
    return MEDIA_FAMILIES.get(media_type.split("/")[0], "unknown")


def mime_of(path: Path) -> str:
    """The Content-Type a local file (a garment image, a mask) is sent with."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def read_local(path: Path) -> bytes:
    """A local file a profile sends along; a file that vanished since the config was loaded fails the job."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise PermanentError(f"cannot read {path}: {e.strerror}", kind="error") from None
