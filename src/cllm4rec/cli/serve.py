"""``cllm4rec serve | explain``: the HTTP service around a trained run, and explanations on the command line."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys

from cllm4rec.core.errors import CLLM4RecError

SERVE_EXTRA_HINT = "the serve command needs the serve extra: pip install 'cllm4rec[serve]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add serve and explain."""
    p = subparsers.add_parser("serve", help="serve a trained run over HTTP (JSON API, /docs, /metrics, a page at /)")
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--max-batch", type=int, default=32, help="most requests per forward pass (default 32)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="longest wait for a batch to fill (default 5)")
    p.add_argument("--score-batch", type=int, default=8, help="prompts per forward chunk in a batch (default 8)")
    p.add_argument("--threads", type=int, help="CPU threads for the model (default: torch's choice)")
    p.add_argument("--max-history", type=int, default=1000, help="most items in a posted history (default 1000)")
    p.add_argument("--max-body-bytes", type=int, default=65536, help="largest request body (default 65536)")
    p.add_argument("--explain-max-tokens", type=int, default=128, help="cap on explanation tokens (default 128)")
    p.add_argument("--explain-max-time", type=float, default=30.0, help="cap on explanation seconds (default 30)")
    p.add_argument("--data", help="the run's dataset folder, if it moved (item texts and explanations)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(handler=_serve)

    p = subparsers.add_parser("explain", help="why an item suits a user, in words, from the content side")
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--user", required=True, help="external ID of a user in the dataset")
    p.add_argument("--item", required=True, help="external ID of an item in the dataset")
    p.add_argument("--max-tokens", type=int, default=60, help="most tokens to generate (default 60)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy, deterministic (default)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed when --temperature > 0")
    p.add_argument("--max-time", type=float, default=30.0, help="generation time bound in seconds (default 30)")
    p.add_argument("--data", help="the run's dataset folder, if it moved (the prompts need its texts)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(handler=_explain)


def _serve(args: argparse.Namespace) -> int:
    import logging

    try:
        import uvicorn

        from cllm4rec.serving.http import ServeOptions, create_app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("fastapi", "uvicorn", "starlette", "prometheus_client"):
            raise CLLM4RecError(SERVE_EXTRA_HINT) from None
        raise
    from cllm4rec.serving.http.auth import API_KEY_ENV
    from cllm4rec.serving.recommend import load_run

    if not 0 <= args.port <= 65535:
        raise CLLM4RecError(f"--port must be in [0, 65535], got {args.port}")
    for name in ("max_batch", "score_batch", "max_history", "max_body_bytes", "explain_max_tokens"):
        if getattr(args, name) < 1:
            raise CLLM4RecError(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_wait_ms < 0 or args.explain_max_time <= 0:
        raise CLLM4RecError("--max-wait-ms must be >= 0 and --explain-max-time > 0")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not _is_loopback(args.host) and not os.environ.get(API_KEY_ENV):
        print(
            f"cllm4rec: warning: binding {args.host} without {API_KEY_ENV}: anyone who can reach it may query it",
            file=sys.stderr,
        )
    if args.threads is not None:
        if args.threads < 1:
            raise CLLM4RecError("--threads must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    loaded = load_run(args.run, device=args.device)
    options = ServeOptions(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        score_batch_size=args.score_batch,
        max_history=args.max_history,
        max_body_bytes=args.max_body_bytes,
        explain_max_tokens=args.explain_max_tokens,
        explain_max_time=args.explain_max_time,
    )
    app = create_app(loaded, options, dataset=loaded.dataset(args.data) if args.data else None)
    print(f"serving {args.run} on http://{args.host}:{args.port} (API docs at /docs, page at /)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level=args.log_level)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _explain(args: argparse.Namespace) -> int:
    from cllm4rec.serving.explain import ExplainOptions, explain
    from cllm4rec.serving.recommend import load_run

    options = ExplainOptions(args.max_tokens, args.temperature, args.seed, args.max_time).check()
    loaded = load_run(args.run, device=args.device)
    result = explain(loaded, args.user, args.item, options, dataset=loaded.dataset(args.data) if args.data else None)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    name = f"{result.title} ({result.item})" if result.title else result.item
    print(f"user {result.user}, item {name}")
    print(f"prompt: {result.prompt}")
    if result.note:
        print(f"note: {result.note}")
    print(f"\n{result.text}\n")
    print(f"({result.new_tokens} tokens, {result.seconds:.1f}s, stopped by {result.stopped})")
    return 0
