"""Locust users for the load check: each asks ``GET /v1/recommend`` for a random known user, back to back.

Bounded in count as well as time: after ``LOAD_MAX_REQUESTS`` requests (default 20000) the run stops even if
``--run-time`` has not elapsed. The user list comes from the server itself (``/v1/users``); the choice of
users is seeded per simulated client so runs are repeatable.
"""

from __future__ import annotations

import itertools
import os
import random

from locust import HttpUser, constant, task

MAX_REQUESTS = int(os.environ.get("LOAD_MAX_REQUESTS", "20000"))
K = int(os.environ.get("LOAD_K", "10"))
API_KEY = os.environ.get("CLLM4REC_API_KEY", "")
_sent = itertools.count(1)
_client_ids = itertools.count()


class Recommender(HttpUser):
    """A closed-loop client: the next request leaves as soon as the previous answer arrives."""

    wait_time = constant(0)

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        self.users = self.client.get("/v1/users?limit=1000", name="/v1/users").json()["users"]
        self.rng = random.Random(next(_client_ids))

    @task
    def recommend(self) -> None:
        if next(_sent) > MAX_REQUESTS:
            self.environment.runner.quit()
            return
        user = self.rng.choice(self.users)
        self.client.get(f"/v1/recommend?user={user}&k={K}", name="/v1/recommend?user=[id]")
