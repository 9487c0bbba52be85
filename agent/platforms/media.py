"""Media types of outputs: guessed from a name, proven by the first bytes, and the file suffix each one is saved with.

The bytes decide: a PNG served as ``application/octet-stream`` is still a PNG, and a web page served as
``image/png`` is still a web page (refused). SVG/XML is refused too: a document that can carry script is never
stored or served as a result.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

import httpx

from agent.platforms.base import OutputType
from agent.platforms.errors import PermanentError, sanitise

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
    "model/gltf-binary": ".glb",
    "model/gltf+json": ".gltf",
    "model/obj": ".obj",
    "model/stl": ".stl",
}
MEDIA_FAMILIES: dict[str, OutputType] = {"image": "image", "video": "video", "audio": "audio", "model": "3d"}


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
    """The media type the first bytes of a file prove, ``text/html`` for a web page, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"glTF"):
        return "model/gltf-binary"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    return None


def media_type_of(declared: str, head: bytes) -> str:
    """The real type of a download, or PermanentError saying why it is not media."""
    sniffed = sniff(head)
    start = head[:512].lstrip().lower()
    if "svg" in declared or "xml" in declared or start.startswith(b"<?xml") or b"<svg" in start:
        # SVG is a document that can carry script: never stored or served as a result
        raise PermanentError(f"output is SVG/XML, not a raster image ({declared or 'no Content-Type'})", kind="output")
    if declared == "text/html" or sniffed == "text/html":
        raise PermanentError(f"output is a web page, not media (text/html): {sanitise(head)!r}", kind="output")
    if sniffed is not None:
        return sniffed  # the bytes decide: a mislabelled PNG is still a PNG
    if declared.split("/")[0] in MEDIA_FAMILIES:
        return declared
    shown = declared or "no Content-Type"
    raise PermanentError(f"output is not a recognisable image, video or audio file ({shown})", kind="output")


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
