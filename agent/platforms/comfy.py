"""ComfyUI conventions both platforms expose: output references, ComfyUI API-format workflows.

- An output may be an absolute URL, a path under the server (``/view?filename=...``) or a bare file name, which
  ComfyUI serves at ``/api/view?type=output&filename=<name>`` (it mounts every route under ``/api`` too).
- A workflow in API format is ``{"<node id>": {"class_type", "inputs": {...}}}``; a profile names node inputs as
  dotted paths (``"73.inputs.image"``) and values are patched into a copy of the file, never into the file.
"""

from __future__ import annotations

import copy
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from agent.jsonutil import loads_strict
from agent.platforms.errors import PermanentError


def resolve_ref(base_url: str, ref: str) -> str:
    """An output reference as an absolute URL: absolute as is, ``/view?...`` under base_url, bare names via
    ComfyUI's ``/api/view`` route."""
    base_url = base_url.rstrip("/")
    ref = ref.strip()
    if re.match(r"^https?://", ref, re.IGNORECASE):
        return ref
    if ref.startswith("//"):
        return f"{httpx.URL(base_url).scheme}:{ref}"
    if ref.startswith("/"):
        return f"{base_url}/{ref.lstrip('/')}"
    return f"{base_url}/api/view?type=output&filename={quote(ref, safe='')}"


def set_path(doc: Any, dotted: str, value: Any) -> None:
    """``doc["73"]["inputs"]["image"] = value`` for ``"73.inputs.image"``; PermanentError when a step is missing."""
    *parents, last = dotted.split(".")
    node = doc
    for step in parents:
        if not isinstance(node, dict) or step not in node:
            raise PermanentError(f"workflow has no {dotted!r} (missing {step!r})", kind="error")
        node = node[step]
    if not isinstance(node, dict):
        raise PermanentError(f"workflow has no {dotted!r}", kind="error")
    node[last] = value


class WorkflowCache:
    """Workflow files read once per change (mtime), handed out as deep copies to patch. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[Path, tuple[float, dict[str, Any]]] = {}

    def load(self, path: Path) -> dict[str, Any]:
        try:
            mtime = path.stat().st_mtime
            with self._lock:
                cached = self._docs.get(path)
            if cached is None or cached[0] != mtime:
                doc = loads_strict(path.read_bytes())
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                cached = (mtime, doc)
                with self._lock:
                    self._docs[path] = cached
        except (OSError, ValueError) as e:  # JSONError is a ValueError with words a technician can act on
            raise PermanentError(f"workflow_file {path}: {e}", kind="error") from None
        return copy.deepcopy(cached[1])
