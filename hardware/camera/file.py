"""A camera that "takes" existing images: one file every time, or a folder's images in name order, round-robin.

For demos, kiosks that process a hot folder, and tests. The folder is listed again at every capture, so images
can be added or removed while the daemon runs; dot-files (macOS `._x.jpg`), sub-folders and anything that is not
an image by its suffix are skipped. Images come out upright (EXIF orientation applied), RGB, and no larger than
the configured size; a JPEG that is already upright, RGB and small enough is passed on byte for byte.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from hardware.camera.base import STILL_QUALITY, Camera, CameraError, CameraSpec, encode_jpeg, fit_within, to_rgb

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_ORIENTATION = 0x0112


class FileCamera(Camera):
    driver = "file"

    def __init__(self, cfg: CameraSpec) -> None:
        super().__init__(cfg)
        if cfg.path is None:
            raise CameraError("the file camera needs a path (an image or a folder of images)", permanent=True)
        self._path = Path(cfg.path)
        self._last_name: str | None = None  # the folder entry served last; the next one is the first after it
        self._cache: tuple[tuple, bytes] | None = None  # (file identity, JPEG) of the last image served

    def _open_handle(self) -> Any:
        self._sources()  # fail now, with the path, if there is nothing to serve
        return self._path

    def _still(self, handle: Any) -> bytes:
        return self._load(self._next_source())

    def _preview(self, handle: Any, max_edge: int) -> bytes:
        # The image served last (or the next one if none yet): previews do not advance the round-robin.
        sources = self._sources()
        current = next((p for p in sources if p.name == self._last_name), None)
        return self._load(current or sources[0])

    def _describe(self) -> str:
        kind = "folder" if self._path.is_dir() else "image"
        return f"file {kind} {self._path} {self.cfg.width}x{self.cfg.height}"

    # ------------------------------------------------------------------------------------------ sources

    def _sources(self) -> list[Path]:
        if self._path.is_file():
            return [self._path]
        if not self._path.is_dir():
            raise CameraError(f"no such image or folder: {self._path}", permanent=True, appears=self._path)
        try:
            files = sorted(
                (
                    p
                    for p in self._path.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
                ),
                key=lambda p: p.name,
            )
        except OSError as e:
            raise CameraError(f"cannot list folder {self._path}: {e.strerror}") from None
        if not files:
            raise CameraError(f"no images in folder {self._path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        return files

    def _next_source(self) -> Path:
        files = self._sources()
        later = [p for p in files if self._last_name is None or p.name > self._last_name]
        chosen = later[0] if later else files[0]
        self._last_name = chosen.name
        return chosen

    # ------------------------------------------------------------------------------------------ decoding

    def _load(self, path: Path) -> bytes:
        """The JPEG for one source image, cached while the file is unchanged."""
        try:
            st = path.stat()
            key = (str(path), st.st_mtime_ns, st.st_size, self.cfg.width, self.cfg.height)
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            data = path.read_bytes()
        except OSError as e:
            raise CameraError(f"cannot read {path}: {e.strerror}") from None
        try:
            jpeg = self._to_jpeg(data)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise CameraError(f"{path} is not an image this camera can read: {e}") from None
        self._cache = (key, jpeg)
        return jpeg

    def _to_jpeg(self, data: bytes) -> bytes:
        with Image.open(io.BytesIO(data)) as im:
            size = fit_within(im.width, im.height, self.cfg.width, self.cfg.height)
            upright = im.getexif().get(_ORIENTATION, 1) == 1
            if im.format == "JPEG" and im.mode == "RGB" and upright and size == im.size:
                return data  # nothing to change: no generation loss, no work
            if im.format == "JPEG":
                im.draft("RGB", size)  # DCT scaling while decoding: cheap when shrinking a big photo
            out = to_rgb(ImageOps.exif_transpose(im))
            target = fit_within(out.width, out.height, self.cfg.width, self.cfg.height)
            if target != out.size:
                out = out.resize(target, Image.Resampling.LANCZOS)
            return encode_jpeg(out, STILL_QUALITY)
