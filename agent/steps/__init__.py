"""The pipeline's steps over one Job: capture → prepare → submit → poll → fetch → present.

Each step does its I/O and returns what happened; only the worker (agent/jobs/worker.py) and, for captures, the
core (agent/core.py) move a job from state to state in the store.
"""
