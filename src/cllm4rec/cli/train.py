"""``cllm4rec pretrain | finetune | train``: the two training stages and the whole pipeline."""

from __future__ import annotations

import argparse
import json
import sys
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
        "planned to fit (the plan is printed) and a stage ends early when its next epoch would not; "
        "default: the preset's or config's budget ('none' turns that off)",
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


def _prepare_run(args: argparse.Namespace, folder: str, config) -> None:
    """Before a stage starts, on the writing process: a new run's guards (what ``--force`` may replace,
    the backbone name), a resumed one's repair of a ``best/`` a kill left behind its ``last/``."""
    from cllm4rec.cli.guards import check_backbone, is_launch_main
    from cllm4rec.core.files import check_output_folder
    from cllm4rec.runs.folder import MARKER, MARKER_KEY, RunFolder

    if not is_launch_main():
        return
    run = RunFolder(Path(folder))
    if config is not None and not args.resume:
        inputs = [args.data, args.config] if hasattr(args, "data") else [args.config]
        check_output_folder(run.root, what="run", marker=MARKER, marker_key=MARKER_KEY, inputs=inputs, force=args.force)
        check_backbone(config.model.backbone)
    elif run.exists:
        for message in run.repair(run.config()):
            print(f"cllm4rec: repaired {run.root}: {message}", file=sys.stderr)


def _pretrain(args: argparse.Namespace) -> int:
    from cllm4rec.cli.guards import writer_lock
    from cllm4rec.runs.config import RunConfig
    from cllm4rec.training.runner import is_main_process, run_pretrain_stage

    config = _config(args)
    if config is None and not args.resume:
        config = RunConfig()
    with writer_lock(args.out, "run folder"):
        _prepare_run(args, args.out, config)
        state = run_pretrain_stage(args.out, args.data, config, _options(args))
    if is_main_process():
        print(f"pretraining done: {state.epoch} epochs, {state.step} steps; checkpoints in {args.out}/pretrain")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from cllm4rec.cli.guards import writer_lock
    from cllm4rec.runs.config import load_config
    from cllm4rec.runs.folder import RunFolder
    from cllm4rec.training.runner import is_main_process, run_finetune_stage

    overrides = None
    if args.preset or args.config:  # a preset or file defines the finetuning settings afresh
        overrides = load_config(args.preset, args.config, args.overrides)
    elif args.overrides:  # key=value alone changes those keys of the run's own config, nothing else
        overrides = load_config(overrides=args.overrides, base=RunFolder(Path(args.run)).config())
    with writer_lock(args.run, "run folder"):
        _prepare_run(args, args.run, None)
        state = run_finetune_stage(args.run, overrides, _options(args), data=args.data)
    if is_main_process():
        print(f"finetuning done: best epoch {state.best_epoch} (validation score {state.best_metric:.4f})")
    return 0


def _train(args: argparse.Namespace) -> int:
    from cllm4rec.cli.guards import is_launch_main, writer_lock
    from cllm4rec.core.files import read_json, write_json_atomic
    from cllm4rec.runs.config import RunConfig
    from cllm4rec.runs.folder import RunFolder
    from cllm4rec.training.budget import parse_budget
    from cllm4rec.training.runner import is_main_process, run_train

    budget = parse_budget(args.budget) if args.budget is not None else None
    config = _config(args)
    if config is None and not args.resume:
        config = RunConfig()
    run = RunFolder(Path(args.out))
    with writer_lock(args.out, "run folder"):
        if args.resume and run.finished():  # its results stand as they are: nothing is trained or rewritten
            if is_launch_main():
                print(f"cllm4rec: {run.root} has finished; its results in {run.metrics_file}:", file=sys.stderr)
                print(json.dumps(read_json(run.metrics_file), indent=2))
            return 0
        _prepare_run(args, args.out, config)
        earlier = run.trained_seconds() if args.resume and run.exists else 0.0
        result = run_train(args.out, args.data, config, _options(args, budget=budget))
        if earlier and is_launch_main():  # the whole run's time: the parts before this one, then this part
            result["train_seconds"] = round(earlier + result["train_seconds"], 1)
            write_json_atomic(run.metrics_file, result)
    if is_main_process():
        print(json.dumps(result, indent=2))
    return 0
