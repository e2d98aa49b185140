"""The HTTP service (docs/DESIGN.md §9): one loaded run behind FastAPI, micro-batching, explanations, a page.

Routes (docs at ``/docs``): ``GET|POST /v1/recommend``, ``GET /v1/items/{id}``, ``GET /v1/users``,
``GET /v1/users/{id}``, ``GET /v1/explain``, ``GET /health``, ``GET /metrics``, and ``GET /`` (the page).
Recommendations come from :func:`cllm4rec.serving.recommend.recommend`, the code behind ``cllm4rec recommend``,
so both answer the same for the same user. IDs, titles and histories come from the run's own catalogue; item
texts and explanations need the run's dataset folder, read once at start-up when it is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from cllm4rec import __version__
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.serving.explain import MAX_NEW_TOKENS_LIMIT, ExplainOptions, explain
from cllm4rec.serving.http.auth import API_KEY_ENV
from cllm4rec.serving.http.batching import MicroBatcher, ServerBusyError
from cllm4rec.serving.http.docs import add_docs
from cllm4rec.serving.http.guard import ECHOED_CHARS, Guard, error_body, log, printable, shown
from cllm4rec.serving.http.metrics import ServiceMetrics
from cllm4rec.serving.recommend import LoadedRun, Recommendation, recommend
from cllm4rec.serving.recommend import Query as RecQuery

STATIC_DIR = Path(__file__).parent / "static"
DISCONNECT_POLL_SECONDS = 0.1
"""How often a running explanation checks that its client is still there."""
CLIENT_GONE = 499
"""The status logged for a request whose client disconnected before the answer (nginx's convention)."""
MAX_ERROR_DETAILS = 20
"""Most validation errors a 422 lists (a history of 1,000 bad entries would otherwise list them all)."""


@dataclass(frozen=True)
class ServeOptions:
    """Runtime options of the service (not part of the model)."""

    max_batch: int = 32
    """Most recommendation requests scored in one forward pass."""
    max_wait_ms: float = 5.0
    """Longest a request waits for others to join its batch."""
    pad_multiple: int = 16
    """Prompt widths are rounded up to a multiple of this: with bf16 kernels compiled and cached per shape,
    few shapes keep a long-running server's memory flat (right padding does not change scores; docs/DESIGN.md §9)."""
    score_batch_size: int = 8
    """Prompts per forward chunk inside a micro-batch. Prompts are sorted by length before chunking, so small
    chunks carry little padding: on a 2-core CPU, chunks of 8 scored ML-100K users 1.35x faster per request than
    one at a time, chunks of 32 2x slower (docs/BENCHMARKS.md, load check)."""
    max_k: int = 1000
    """Largest k a client may ask for (also capped by the catalogue)."""
    max_history: int = 1000
    """Most item IDs in a POSTed history (more: 422)."""
    max_body_bytes: int = 65536
    """Largest request body (more: 413)."""
    max_queue: int = 1024
    """Most recommendation requests waiting; beyond that the service answers 503."""
    explain_max_tokens: int = 128
    """Upper bound on the tokens one explanation may generate."""
    explain_max_time: float = 30.0
    """Upper bound on one explanation's generation time, in seconds."""
    explain_max_waiting: int = 8
    """Most explanations queued or running at once (more: 503)."""
    api_key: str | None = None
    """Required key; None reads ``CLLM4REC_API_KEY`` from the environment (empty = no key)."""


class Item(BaseModel):
    """One recommended item."""

    rank: int
    item: str
    score: float
    title: str | None


class RecommendResponse(BaseModel):
    user: str | None = Field(description="the user's external ID; null for a posted history")
    k: int
    items: list[Item]


class HistoryRequest(BaseModel):
    """Someone not in the training data: their items (external IDs; JSON numbers accepted)."""

    model_config = ConfigDict(extra="forbid")
    history: list[StrictStr | StrictInt] = Field(min_length=1, description="external item IDs")
    k: StrictInt = Field(10, description="number of items to return")


class HistoryItem(BaseModel):
    item: str
    title: str | None


class UserResponse(BaseModel):
    user: str
    n_history: int
    history: list[HistoryItem]


class UsersResponse(BaseModel):
    total: int
    offset: int
    users: list[str]


class ItemResponse(BaseModel):
    item: str
    title: str | None
    text: dict[str, str] = Field(description="the item's text fields (empty when the dataset is not available)")
    n_users: int = Field(description="users of the dataset who interacted with the item")


class ExplainResponse(BaseModel):
    user: str
    item: str
    title: str | None
    text: str
    template: str = Field(description="'review' (user-item review prompt) or 'item_text' (no reviews)")
    prompt: str
    note: str | None
    new_tokens: int
    stopped: str = Field(description="'eos', 'max_tokens' or 'time'")
    seconds: float
    greedy: bool


class Service:
    """The loaded run plus everything the routes share: batcher, explanation thread, metrics."""

    def __init__(self, loaded: LoadedRun, options: ServeOptions, run_id: str, dataset: Dataset | None) -> None:
        self.loaded, self.options, self.run_id, self.dataset = loaded, options, run_id, dataset
        self.metrics = ServiceMetrics()
        self.batcher = MicroBatcher(
            self._score,
            max_batch=options.max_batch,
            max_wait=options.max_wait_ms / 1000.0,
            max_queue=options.max_queue,
            on_batch=self.metrics.observe_batch,
        )
        self.explain_executor: ThreadPoolExecutor | None = None
        self.explain_slots: asyncio.Semaphore | None = None
        self.catalog = loaded.catalog
        loaded.recommender.batch_size = options.score_batch_size  # scoring options only: scores do not change
        loaded.recommender.pad_multiple = options.pad_multiple
        self.item_users = self.catalog.known.getnnz(axis=0)  # (J,) users per item

    def _score(self, key: Hashable, payloads: Sequence[Any]) -> list[list[Recommendation]]:
        """One forward pass for a group of same-kind, same-k requests (runs in the model thread)."""
        kind, k = key
        queries = [RecQuery(user=p) if kind == "user" else RecQuery(history=tuple(p)) for p in payloads]
        with torch.inference_mode():
            return recommend(self.loaded, queries, k=k)

    def history(self, user: int) -> list[int]:
        """Everything the dataset knew the user interacted with: what recommendations exclude."""
        known = self.catalog.known
        return known.indices[known.indptr[user] : known.indptr[user + 1]].tolist()

    # ----- request checks (cheap, in the event loop, so a bad request never reaches a batch) -----------
    def check_k(self, k: int, n_seen: int, who: str) -> None:
        n_items = self.catalog.n_items
        if k < 1:
            raise _unprocessable(f"k must be a positive number of items, got {k}")
        if k > min(n_items, self.options.max_k):
            raise _unprocessable(f"k={k} is larger than allowed ({min(n_items, self.options.max_k)})")
        if k > n_items - n_seen:
            raise _unprocessable(f"k={k} is more than the {n_items - n_seen} items {who} has not seen")

    def user_index(self, user: str) -> int:
        index = self.catalog.user_index.get(user)
        if index is None:
            raise HTTPException(404, f"unknown user {shown(user)}: not in this run's dataset")
        return index

    def item_index(self, item: str) -> int:
        index = self.catalog.item_index.get(item)
        if index is None:
            raise HTTPException(404, f"unknown item {shown(item)}: not in this run's dataset")
        return index


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(422, message)


def _response(user: str | None, k: int, recs: list[Recommendation]) -> RecommendResponse:
    return RecommendResponse(user=user, k=k, items=[Item(**r.to_dict()) for r in recs])


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """The methods some route of the app takes at this request's path (GET implies HEAD)."""
    methods: set[str] = set()
    for route in app.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def run_texts(loaded: LoadedRun) -> Dataset | None:
    """The run's dataset (item texts and reviews) when its folder is still there, else None (logged)."""
    try:
        return loaded.dataset()
    except CLLM4RecError as exc:
        log.warning("item texts and explanations are unavailable: %s", exc)
        return None


def create_app(
    loaded: LoadedRun,
    options: ServeOptions | None = None,
    *,
    dataset: Dataset | None = None,
    run_id: str | None = None,
) -> FastAPI:
    """Build the FastAPI app around an already loaded run (the run loads once, before serving starts).

    ``dataset`` supplies item texts and explanation templates; by default the run's recorded dataset folder.
    """
    options = options or ServeOptions()
    api_key = options.api_key if options.api_key is not None else os.environ.get(API_KEY_ENV, "")
    dataset = dataset if dataset is not None else run_texts(loaded)
    service = Service(loaded, options, run_id or loaded.root.name, dataset)
    catalog = loaded.catalog

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.batcher.start()
        service.explain_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cllm4rec-explain")
        service.explain_slots = asyncio.Semaphore(options.explain_max_waiting)
        try:
            yield
        finally:
            await service.batcher.stop()
            service.explain_executor.shutdown(wait=True)

    app = FastAPI(
        title="cllm4rec",
        version=__version__,
        description="Recommendations, item details and explanations from a trained CLLM4Rec run.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    add_docs(app, keyed=bool(api_key))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "allow"}
        if exc.status_code == 405:  # every method the path takes, not only those of the first route matched
            allowed = allowed_methods(app, request.scope)
            headers["allow"] = ", ".join(allowed)
            message = f"method {request.method} is not allowed here; this path takes {', '.join(allowed)}"
            return JSONResponse(error_body(405, message), 405, headers=headers)
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [  # a location can be a key the client sent: escaped and capped like every echoed value
            {"loc": [printable(str(p), ECHOED_CHARS) for p in e.get("loc", ())], "message": str(e.get("msg", ""))}
            for e in exc.errors()[:MAX_ERROR_DETAILS]
        ]
        summary = "; ".join(f"{'.'.join(d['loc'][1:]) or d['loc'][0]}: {d['message']}" for d in details[:3])
        return JSONResponse(error_body(422, f"invalid request: {summary}", details), 422)

    @app.exception_handler(ServerBusyError)
    async def busy(_: Request, exc: ServerBusyError) -> JSONResponse:
        return JSONResponse(error_body(503, str(exc)), 503, headers={"retry-after": "1"})

    @app.exception_handler(CLLM4RecError)
    async def bad_input(_: Request, exc: CLLM4RecError) -> JSONResponse:
        return JSONResponse(error_body(422, str(exc)), 422)

    @app.get("/v1/recommend", response_model=RecommendResponse, tags=["recommend"])
    async def recommend_user(
        user: Annotated[str, Query(min_length=1, max_length=256, description="the user's external ID")],
        k: Annotated[int, Query(description="number of items")] = 10,
    ) -> RecommendResponse:
        """Top-k items for a user of the dataset; everything they are known to have seen is excluded."""
        index = service.user_index(user)
        service.check_k(k, len(service.history(index)), f"user {shown(user)}")
        recs = await service.batcher.submit(("user", k), user)
        return _response(user, k, recs)

    @app.post("/v1/recommend", response_model=RecommendResponse, tags=["recommend"])
    async def recommend_history(body: HistoryRequest) -> RecommendResponse:
        """Top-k items for someone not in the training data, from their item history (those items excluded)."""
        history = [str(i) for i in body.history]
        if len(history) > options.max_history:
            raise _unprocessable(f"the history has {len(history)} items; at most {options.max_history} are accepted")
        unknown = [i for i in history if i not in catalog.item_index]
        if unknown:
            listed = ", ".join(map(shown, unknown[:5])) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise HTTPException(404, f"unknown item ID(s) in the history: {listed}")
        service.check_k(body.k, len(set(history)), "this history")
        recs = await service.batcher.submit(("history", body.k), history)
        return _response(None, body.k, recs)

    @app.get("/v1/items/{item_id}", response_model=ItemResponse, tags=["catalogue"])
    async def item(item_id: str) -> ItemResponse:
        """An item's title and text fields."""
        j = service.item_index(item_id)
        text = dict(dataset.item_text[j]) if dataset is not None else {}
        return ItemResponse(item=item_id, title=catalog.titles[j], text=text, n_users=int(service.item_users[j]))

    @app.get("/v1/users", response_model=UsersResponse, tags=["catalogue"])
    async def users(
        offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> UsersResponse:
        """A page of the dataset's user IDs (for pickers)."""
        return UsersResponse(total=catalog.n_users, offset=offset, users=catalog.user_ids[offset : offset + limit])

    @app.get("/v1/users/{user_id}", response_model=UserResponse, tags=["catalogue"])
    async def user(user_id: str) -> UserResponse:
        """A user's known history (train, validation and test: what recommendations exclude), with titles."""
        seen = service.history(service.user_index(user_id))
        history = [HistoryItem(item=catalog.item_ids[j], title=catalog.titles[j]) for j in seen]
        return UserResponse(user=user_id, n_history=len(history), history=history)

    @app.get("/v1/explain", response_model=ExplainResponse, tags=["explain"])
    async def explain_pair(
        request: Request,
        user: Annotated[str, Query(min_length=1, max_length=256)],
        item: Annotated[str, Query(min_length=1, max_length=256)],
        max_tokens: Annotated[int, Query(ge=1, le=MAX_NEW_TOKENS_LIMIT)] = 60,
        temperature: Annotated[float, Query(ge=0.0, le=5.0)] = 0.0,
        seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> ExplainResponse | Response:
        """A short text from the content side for this user-item pair (greedy unless temperature > 0).

        Generation stops when the client disconnects."""
        service.user_index(user)
        service.item_index(item)
        if dataset is None:
            raise HTTPException(
                503, "explanations need the run's dataset (its texts), which this server could not read"
            )
        if max_tokens > options.explain_max_tokens:
            raise _unprocessable(f"max_tokens must be at most {options.explain_max_tokens} on this server")
        gen = ExplainOptions(max_tokens, temperature, seed, options.explain_max_time)
        assert service.explain_slots is not None  # set at start-up
        if service.explain_slots.locked():
            raise ServerBusyError("too many explanations in progress; retry later")
        cancel = threading.Event()
        async with service.explain_slots:
            loop = asyncio.get_running_loop()
            running = loop.run_in_executor(
                service.explain_executor, partial(explain, loaded, user, item, gen, dataset=dataset, cancel=cancel)
            )
            try:
                while not (await asyncio.wait({running}, timeout=DISCONNECT_POLL_SECONDS))[0]:
                    if await request.is_disconnected():  # nobody to answer: stop at the next token
                        cancel.set()
                        break
                result = await running
            finally:
                if not running.done():
                    cancel.set()
        if cancel.is_set():
            log.info("explanation for a client that went away stopped after %d tokens", result.new_tokens)
            return Response(status_code=CLIENT_GONE)
        return ExplainResponse(**result.to_dict())

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness and what is served (never needs the API key)."""
        ref = loaded.recommender.model.ref
        return {
            "status": "ok",
            "model_loaded": True,
            "run_id": service.run_id,
            "checkpoint": loaded.checkpoint.name,
            "n_users": catalog.n_users,
            "n_items": catalog.n_items,
            "backbone": ref.to_dict() if ref is not None else None,
            "device": str(loaded.device),
            "prompt_style": loaded.style,
            "texts": dataset is not None,
            "reviews": bool(dataset is not None and dataset.reviews),
            "version": __version__,
        }

    @app.get("/metrics", tags=["service"])
    async def metrics() -> Response:
        """Prometheus text format: requests, latency histogram, micro-batch sizes."""
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        Guard,
        metrics=service.metrics,
        api_key=api_key or None,
        max_body_bytes=options.max_body_bytes,
        routes=lambda: app.routes,
    )
    return app
