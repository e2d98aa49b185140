"""``cllm4rec pretrain | finetune | train``: the two training stages and the whole pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cllm4rec.cli.common import add_device
from cllm4rec.core.defaults import DEFAULT_SEED


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="a shipped preset: paper or quick (see README)")
    p.add_argument("--config", help="a YAML config file (sections model, pretrain, finetune)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    add_device(p, "where to train")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. pretrain.lr=3e-4")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the training commands."""
    p = subparsers.add_parser("pretrain", help="soft+hard prompted pretraining with mutual regularization")
    p.add_argument("--data", help="prepared dataset folder (required for a new run)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--force", action="store_true", help="start over in an existing run folder")
    _common(p)
    p.set_defaults(handler=_pretrain)

    p = subparsers.add_parser("finetune", help="recommendation finetuning of a pretrained run")
    p.add_argument("--run", required=True, help="run folder holding a finished pretraining stage")
    p.add_argument("--data", help="dataset folder (default: the one the run was started with)")
    _common(p)
    p.set_defaults(handler=_finetune)

    p = subparsers.add_parser("train", help="pretrain, finetune and evaluate on the test split")
    p.add_argument("--data", help="prepared dataset folder (required for a new run)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--force", action="store_true", help="start over in an existing run folder")
    p.add_argument(
        "--budget",
        metavar="TIME",
        help="wall-clock budget for the whole command, e.g. 30m, 1.5h, 900s: the epochs of both stages are "
        "planned to fit (the plan is printed) and a stage ends early when its next epoch would not",
    )
    _common(p)
    p.set_defaults(handler=_train)


def _config(args: argparse.Namespace):
    from cllm4rec.core.errors import CLLM4RecError
    from cllm4rec.runs.config import load_config

    given = bool(args.preset or args.config or args.overrides)
    if args.resume and given:
        raise CLLM4RecError("--resume continues a run with its saved config; drop --preset/--config/overrides")
    if not given:
        return None
    return load_config(args.preset, args.config, args.overrides)


def _options(args: argparse.Namespace, **extra):
    from cllm4rec.training.runner import RunOptions

    return RunOptions(
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        force=getattr(args, "force", False),
        progress=not args.no_progress,
        **extra,
    )


def _pretrain(args: argparse.Namespace) -> int:
    from cllm4rec.runs.config import RunConfig
    from cllm4rec.training.runner import is_main_process, run_pretrain_stage

    config = _config(args)
    if config is None and not args.resume:
        config = RunConfig()
    state = run_pretrain_stage(args.out, args.data, config, _options(args))
    if is_main_process():
        print(f"pretraining done: {state.epoch} epochs, {state.step} steps; checkpoints in {args.out}/pretrain")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from cllm4rec.runs.config import load_config
    from cllm4rec.runs.folder import RunFolder
    from cllm4rec.training.runner import is_main_process, run_finetune_stage

    overrides = None
    if args.preset or args.config:  # a preset or file defines the finetuning settings afresh
        overrides = load_config(args.preset, args.config, args.overrides)
    elif args.overrides:  # key=value alone changes those keys of the run's own config, nothing else
        overrides = load_config(overrides=args.overrides, base=RunFolder(Path(args.run)).config())
    state = run_finetune_stage(args.run, overrides, _options(args), data=args.data)
    if is_main_process():
        print(f"finetuning done: best epoch {state.best_epoch} (validation score {state.best_metric:.4f})")
    return 0


def _train(args: argparse.Namespace) -> int:
    from cllm4rec.runs.config import RunConfig
    from cllm4rec.training.budget import parse_budget
    from cllm4rec.training.runner import is_main_process, run_train

    budget = parse_budget(args.budget) if args.budget is not None else None
    config = _config(args)
    if config is None and not args.resume:
        config = RunConfig()
    result = run_train(args.out, args.data, config, _options(args, budget=budget))
    if is_main_process():
        print(json.dumps(result, indent=2))
    return 0
