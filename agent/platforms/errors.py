"""Temporary on main until the platforms split lands: the error classes live in base.py today."""

from agent.platforms.base import AuthError, PermanentError, PlatformError, TransientError

__all__ = ["AuthError", "PermanentError", "PlatformError", "TransientError"]
