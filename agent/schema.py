"""The pydantic base every config model uses, and small field types shared by config sections and platform modes.

It imports nothing else from ``agent``, so a platform mode can declare its profile model without importing the config
package (which imports the mode registry to build ``ProfileConfig``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


class _Model(BaseModel):
    """A config table: unknown keys are errors (a typo must never be silently ignored); defaults are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


_URL = re.compile(r"(^|/)(https?|ftp|s3|gs|file):/", re.I)  # also after a relative path was joined to the folder


def _must_be_file(path: Path) -> Path:
    if _URL.search(str(path)):
        raise ValueError("a URL is not a file here: download it to the device and give the file's path")
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _int_as_str(value: Any) -> Any:
    # TOML lets a technician write `workflow_id = 1234`; the platform takes it as text either way
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ExistingFile = Annotated[Path, AfterValidator(_must_be_file)]
"""A path that must name an existing file when the config is loaded (relative paths are resolved first)."""

IdText = Annotated[str, BeforeValidator(_int_as_str)]
"""An id the platform treats as text, written as a string or an integer."""


def unwrap_annotated(tp: Any) -> Any:
    """`Annotated[X, ...]` -> X (how field types are walked for error hints and path keys)."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)
