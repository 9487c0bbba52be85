"""The print action: a done job's first image to the CUPS queue (`lp`). The durable print queue, the layout for
the paper and the printer's state come with the printing work; this is what the `print` command does today."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent.commands import CommandError
from agent.jobs.model import Job, JobState

if TYPE_CHECKING:
    from agent.config import Config


def print_result(config: Config, job: Job) -> str:
    """Send the job's first image to the printer; returns the CUPS job id. CommandError when it cannot."""
    if not config.printer.enabled:
        raise CommandError("unavailable", "printing is off ([printer] enabled = false)")
    if job.state != JobState.DONE:
        raise CommandError("invalid_state", f"job {job.id} is {job.state.value}; only done jobs print")
    from hardware.printer import CupsPrinter, PrinterError

    images = [o.path for o in job.outputs if o.type == "image" and o.path]
    if not images:
        raise CommandError("invalid_state", f"job {job.id} has no image to print")
    try:
        return CupsPrinter(config.printer.queue).print_file(Path(images[0]), title=f"edge-agent {job.id}")
    except PrinterError as e:
        raise CommandError("printer", str(e)) from None
