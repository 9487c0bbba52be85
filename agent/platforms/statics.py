"""Static inputs a profile sends along with the photo (garments, backgrounds, masks, a last frame): checked when
the config is loaded, prepared when a job is sent.

At load, each file must exist and be an image Pillow can read (a mask: a PNG), so a wrong path or a JPEG saved
as ``mask.png`` is exit 2 with the file and key named, not a job that fails at the guest's moment. At submit the
file is read again (it may have been replaced since; a file gone by then fails the job with its path).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Annotated

from PIL import Image, UnidentifiedImageError
from pydantic import AfterValidator

from agent.platforms.errors import PermanentError
from agent.platforms.media import mime_of, read_local
from agent.schema import ExistingFile


def _image_format(path: Path) -> str:
    try:
        with Image.open(path) as im:
            im.verify()
            return str(im.format or "")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"not an image file Pillow can read: {path} ({type(e).__name__})") from None


def _is_image(path: Path) -> Path:
    _image_format(path)
    return path


def _is_png(path: Path) -> Path:
    fmt = _image_format(path)
    if fmt != "PNG":
        raise ValueError(f"a mask must be a PNG (with transparency where the edit goes): {path} is {fmt or 'unknown'}")
    return path


StaticImage = Annotated[ExistingFile, AfterValidator(_is_image)]
"""A local image sent with every job (checked readable at config load)."""

PngMask = Annotated[ExistingFile, AfterValidator(_is_png)]
"""A mask: a PNG whose transparent pixels mark what may change."""


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def mask_for(path: Path, size: tuple[int, int]) -> bytes:
    """The mask as sent: the PNG as it is when it already has the photo's size, else scaled to it (a mask drawn
    for the camera's full frame still fits the smaller upload)."""
    data = read_local(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.size == size:
                return data
            scaled = im.convert("RGBA").resize(size, Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError) as e:
        raise PermanentError(f"mask {path} cannot be read: {e}", kind="error") from None
    buf = io.BytesIO()
    scaled.save(buf, "PNG")
    return buf.getvalue()


def file_part(path: Path) -> tuple[str, bytes, str]:
    """A local file as a multipart part ``(name, bytes, content type)``."""
    return (path.name, read_local(path), mime_of(path))


def data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64," + base64.b64encode(data).decode("ascii")


def file_data_url(path: Path) -> str:
    return data_url(read_local(path), mime_of(path))
