"""Locust users for the soak: mixed routes, closed loop, as a browsing client and an API client would mix them.

Per 50 requests on average: 20 ``GET /v1/recommend``, 10 ``POST /v1/recommend`` (a history of 5 known items),
10 ``GET /v1/items/{id}``, 5 ``GET /v1/users/{id}``, 4 ``GET /v1/users`` and 1 ``GET /v1/explain`` (20 tokens).
Users, items and choices come from the server itself and a per-client seed, so runs are repeatable.
"""

from __future__ import annotations

import itertools
import os
import random

from locust import HttpUser, constant, task

API_KEY = os.environ.get("CLLM4REC_API_KEY", "")
EXPLAIN_TOKENS = int(os.environ.get("SOAK_EXPLAIN_TOKENS", "20"))
_client_ids = itertools.count()


class Mixed(HttpUser):
    """One client of the soak: every request leaves as soon as the previous answer arrives."""

    wait_time = constant(0)

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        self.rng = random.Random(next(_client_ids))
        self.users = self.client.get("/v1/users?limit=1000", name="/v1/users").json()["users"]
        items: set[str] = set()
        for user in self.rng.sample(self.users, 5):
            history = self.client.get(f"/v1/users/{user}", name="/v1/users/[id]").json()["history"]
            items.update(h["item"] for h in history)
        self.items = sorted(items)

    @task(20)
    def recommend_user(self) -> None:
        user = self.rng.choice(self.users)
        self.client.get(f"/v1/recommend?user={user}&k=10", name="GET /v1/recommend")

    @task(10)
    def recommend_history(self) -> None:
        history = self.rng.sample(self.items, 5)
        self.client.post("/v1/recommend", json={"history": history, "k": 10}, name="POST /v1/recommend")

    @task(10)
    def item(self) -> None:
        self.client.get(f"/v1/items/{self.rng.choice(self.items)}", name="/v1/items/[id]")

    @task(5)
    def user(self) -> None:
        self.client.get(f"/v1/users/{self.rng.choice(self.users)}", name="/v1/users/[id]")

    @task(4)
    def users_page(self) -> None:
        self.client.get(f"/v1/users?offset={self.rng.randrange(0, len(self.users))}&limit=100", name="/v1/users")

    @task(1)
    def explain(self) -> None:
        user, item = self.rng.choice(self.users), self.rng.choice(self.items)
        self.client.get(
            f"/v1/explain?user={user}&item={item}&max_tokens={EXPLAIN_TOKENS}", name="/v1/explain", timeout=120
        )
