"""Where a job's files live: ``<output_dir>/<YYYY-MM-DD>/<job_id>/`` with capture.jpg, result-N.<ext>, job.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

from agent.durable import write_durable
from agent.jobs.model import Job

CAPTURE_NAME = "capture.jpg"
JOB_JSON = "job.json"


class ResultLayout:
    def __init__(self, output_dir: Path) -> None:
        self.root = Path(output_dir)

    def job_dir(self, job_id: str, created_at: float) -> Path:
        day = time.strftime("%Y-%m-%d", time.localtime(created_at))
        return self.root / day / job_id

    def write_job_json(self, job: Job) -> None:
        """The job's copy for a rebuilt queue, at its milestones (agent/jobs/lifecycle.py): atomic and fsynced."""
        if job.result_dir:
            write_durable(Path(job.result_dir) / JOB_JSON, job.to_json().encode())

    def find_file(self, job: Job, name: str) -> Path | None:
        """A file of this job's folder, by plain name only (never a path that could climb out of it)."""
        if not job.result_dir or "/" in name or "\\" in name or name.startswith("."):
            return None
        p = Path(job.result_dir) / name
        return p if p.is_file() else None

    def recent_dirs(self, days: int | None) -> list[Path]:
        """Job folders of the last `days` date folders (None: all), for start-up reconciliation."""
        if not self.root.is_dir():
            return []
        dates = sorted((d for d in self.root.iterdir() if d.is_dir() and len(d.name) == 10), reverse=True)
        if days is not None:
            dates = dates[:days]
        return [j for d in dates for j in d.iterdir() if j.is_dir()]

    @staticmethod
    def read_job_json(job_dir: Path) -> dict | None:
        try:
            return json.loads((job_dir / JOB_JSON).read_text())
        except (OSError, ValueError):
            return None
