"""The scheduler: it picks due jobs from the queue (agent/jobs/) and runs their next step (agent/steps/) on a
small pool, applying each outcome through the lifecycle. loop.py is the scheduler itself, sweep.py what time
alone decides (deadlines, lost submits, remote TTL), reachability.py which platforms answer.

Layering: agent.jobs (the durable queue) knows nothing of steps or scheduling; agent.steps use the queue's
types; the scheduler uses both."""

from agent.scheduler.loop import Scheduler

__all__ = ["Scheduler"]
