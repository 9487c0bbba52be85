"""edge-agent: the daemon that turns a camera, buttons and a screen or printer into an AI photo booth."""

__version__ = "0.1.0"
