"""``cllm4rec serve``: the HTTP service (FastAPI + uvicorn, the ``serve`` extra) around one loaded run."""

from cllm4rec.serving.http.app import ServeOptions, create_app

__all__ = ["ServeOptions", "create_app"]
