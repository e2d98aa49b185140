"""Serving a trained run: ``load_run`` once, then ``recommend()`` for known users or raw histories."""

from cllm4rec.serving.recommend import LoadedRun, Query, Recommendation, load_run, recommend

__all__ = ["LoadedRun", "Query", "Recommendation", "load_run", "recommend"]
