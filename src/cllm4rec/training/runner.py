"""What the CLI calls: ``pretrain``, ``finetune`` and ``train`` over a run folder (command -> run_* -> loop).

The same functions run under ``accelerate launch``: the main process creates or reopens the run folder
first, the others reopen what it wrote, and only the main process writes (docs/DESIGN.md §10).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import write_json_atomic
from cllm4rec.data import Dataset
from cllm4rec.runs.checkpoint import load_tables, read_state
from cllm4rec.runs.config import RunConfig
from cllm4rec.runs.folder import RunFolder

if TYPE_CHECKING:
    from cllm4rec.training.engine import Context
    from cllm4rec.training.epoch import StageState


@dataclass(frozen=True)
class RunOptions:
    """Runtime options, kept apart from the model/training config."""

    seed: int = DEFAULT_SEED
    device: str = "auto"
    resume: bool = False
    force: bool = False
    progress: bool = True
    budget: float | None = None
    """Wall-clock seconds for the whole ``train`` command (``--budget``): epochs are planned to fit. None: the
    config's ``budget``; 0: no budget even where the config sets one."""


def open_run(
    out: str | Path, data: str | Path | None, config: RunConfig | None, options: RunOptions
) -> tuple[RunFolder, Dataset, RunConfig, int]:
    """Create or reopen a run folder; return it with its dataset, config and seed."""
    run = RunFolder(Path(out))
    if options.resume or (config is None and run.exists):
        if not run.exists:
            raise CLLM4RecError(f"nothing to resume: {run.root} is not a run folder")
        info = run.info()
        dataset = Dataset.load(data or info["dataset"])
        run.check_dataset(dataset)
        return run, dataset, run.config(), int(info["seed"])
    if data is None:
        raise CLLM4RecError("--data is required to start a new run")
    dataset = Dataset.load(data)
    run.create(config or RunConfig(), dataset, seed=options.seed, device=options.device, force=options.force)
    return run, dataset, run.config(), options.seed


def is_main_process() -> bool:
    """Whether this process is the one that writes and prints (true without ``accelerate launch``)."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def _accelerator(options: RunOptions) -> Any:
    from cllm4rec.model import resolve_device
    from cllm4rec.training.sharding import make_accelerator

    return make_accelerator(resolve_device(options.device))


def _open(
    accelerator: Any, out: str | Path, data: str | Path | None, config: RunConfig | None, options: RunOptions
) -> tuple[RunFolder, Dataset, RunConfig, int]:
    """:func:`open_run` on the main process first (it may create the folder), then on the others (reopen)."""
    opened = open_run(out, data, config, options) if accelerator.is_main_process else None
    accelerator.wait_for_everyone()
    return opened or open_run(out, data, None, replace(options, resume=True, force=False))


def _context(accelerator: Any, dataset: Dataset, config: RunConfig, seed: int, options: RunOptions) -> Context:
    from cllm4rec.core.memory import release_large_blocks
    from cllm4rec.training.engine import build_context

    release_large_blocks()  # freed activations leave the resident set (docs/DESIGN.md §2)
    return build_context(dataset, config, seed=seed, progress=options.progress, accelerator=accelerator)


def run_pretrain_stage(
    out: str | Path, data: str | Path | None, config: RunConfig | None, options: RunOptions
) -> StageState:
    """``cllm4rec pretrain``: start (or resume) a run folder and pretrain."""
    from cllm4rec.training.pretrain import run_pretrain

    accelerator = _accelerator(options)
    run, dataset, config, seed = _open(accelerator, out, data, config, options)
    ctx = _context(accelerator, dataset, config, seed, options)
    return run_pretrain(run, ctx, config.pretrain, resume=options.resume)


def run_finetune_stage(
    out: str | Path, overrides: RunConfig | None, options: RunOptions, data: str | Path | None = None
) -> StageState:
    """``cllm4rec finetune``: finetune a pretrained run folder (finetune settings may be overridden)."""
    from cllm4rec.training.finetune import run_finetune

    accelerator = _accelerator(options)
    run, dataset, config, seed = _open(accelerator, out, data, None, replace(options, resume=True))
    if overrides is not None and overrides.finetune != config.finetune:
        if read_state(run.last("finetune")) is not None and options.resume:
            raise CLLM4RecError("cannot change the finetuning config while resuming; start finetuning afresh")
        config = replace(config, finetune=overrides.finetune)
        if accelerator.is_main_process:
            run.update_config(config)
    ctx = _context(accelerator, dataset, config, seed, options)
    return run_finetune(run, ctx, config.finetune, resume=options.resume)


def run_train(
    out: str | Path, data: str | Path | None, config: RunConfig | None, options: RunOptions
) -> dict[str, Any]:
    """``cllm4rec train``: pretrain, finetune (unless disabled), then evaluate on test into ``metrics.json``."""
    from cllm4rec.training.finetune import run_finetune
    from cllm4rec.training.pretrain import run_pretrain

    started = time.perf_counter()
    accelerator = _accelerator(options)
    run, dataset, config, seed = _open(accelerator, out, data, config, options)
    ctx = _context(accelerator, dataset, config, seed, options)
    seconds = options.budget if options.budget is not None else budget_seconds(config)
    budget = _plan_budget(run, ctx, config, seconds, options.resume, started) if seconds else None
    config = ctx.record.config
    run_pretrain(run, ctx, config.pretrain, resume=options.resume, budget=budget)
    if config.finetune.enabled:
        run_finetune(run, ctx, config.finetune, resume=options.resume, budget=budget)
    return evaluate_run(run, ctx, started)


def budget_seconds(config: RunConfig) -> float | None:
    """The config's own budget in seconds (None when it sets none)."""
    from cllm4rec.core.coerce import parse_duration

    return parse_duration(config.budget, "budget") if config.budget else None


def _plan_budget(run: RunFolder, ctx: Context, config: RunConfig, seconds: float, resume: bool, started: float) -> Any:
    """Measure, plan the epochs that fit ``seconds``, record the plan in the run's config, print it."""
    from cllm4rec.training.budget import Budget, measure_costs, plan

    budget = Budget(seconds, started)
    costs = measure_costs(ctx, config)
    budget.reserve = costs.validation  # the test scores as many users as validation does
    if ctx.dataset.cold is not None:  # the cold-test items are placed and ranked after the test (§11)
        from cllm4rec.model.new_items import estimate_placement_seconds

        n_cold = len(ctx.dataset.cold.columns("test"))
        budget.reserve += costs.validation + estimate_placement_seconds(ctx.model, ctx.dataset.item_text, n_cold)
    if resume:  # the epochs were planned when the run started; only the deadline is new
        ctx.accelerator.print("cllm4rec: budget: resuming with the planned epochs, stopping by the deadline")
        return budget
    planned, text = plan(config, costs, budget)
    ctx.accelerator.print(text)
    ctx.record = replace(ctx.record, config=planned)
    if ctx.is_main:
        run.update_config(planned)
    ctx.accelerator.wait_for_everyone()
    return budget


def evaluate_run(run: RunFolder, ctx: Context, started: float) -> dict[str, Any]:
    """Score the test split with the run's final checkpoint and write ``metrics.json`` (main process)."""
    from cllm4rec.evaluation import evaluate
    from cllm4rec.evaluation.cold import few_interaction_metrics
    from cllm4rec.model.recommender import CLLM4RecRecommender
    from cllm4rec.training.sharding import scorer

    path, style = run.final(trained=True)
    load_tables(ctx.model, path)
    train_seconds = time.perf_counter() - started
    recommender = scorer(
        CLLM4RecRecommender(
            ctx.model, ctx.tok, style=style, max_length=ctx.model_config.max_length, progress=ctx.progress
        ),
        ctx.accelerator,
    )
    t0 = time.perf_counter()
    evaluation = evaluate(recommender, ctx.dataset, "test", progress=ctx.progress)
    score_seconds = time.perf_counter() - t0
    result = {
        "split": "test",
        "checkpoint": str(path.relative_to(run.root)),
        "prompt_style": style,
        "metrics": evaluation.metrics,
        "train_seconds": round(train_seconds, 1),
        "score_seconds_per_1k_users": round(1000 * score_seconds / max(1, evaluation.n_users), 2),
    }
    result["few_interactions"] = few_interaction_metrics(evaluation, ctx.dataset.train)
    if ctx.dataset.cold is not None and style == "rec":
        result.update(evaluate_new_items(ctx, recommender))
    if ctx.is_main:
        write_json_atomic(run.root / "metrics.json", result)
    ctx.accelerator.wait_for_everyone()
    return result


def evaluate_new_items(ctx: Context, recommender: Any) -> dict[str, Any]:
    """The cold-test rankings of the trained run (:func:`cold_rankings`) and the seconds they took. One
    process only (``recommender`` is then the plain one): placement is not sharded."""
    if ctx.accelerator.num_processes > 1:
        ctx.accelerator.print("cllm4rec: cold items are evaluated on one process; run 'cllm4rec evaluate' for them")
        return {}
    t0 = time.perf_counter()
    result = cold_rankings(recommender, ctx.dataset, "test", seed=ctx.seed, progress=ctx.progress)
    return {**result, "cold_seconds": round(time.perf_counter() - t0, 1)}


def cold_rankings(recommender: Any, dataset: Dataset, split: str, *, seed: int, progress: bool) -> dict[str, Any]:
    """``metrics_cold`` and ``metrics_all`` of ``split``: its cold items placed from their text with the run's
    seed and ranked (evaluation/cold.py), what ``train`` writes and ``evaluate`` prints; the model is the
    trained one again afterwards."""
    from cllm4rec.evaluation.cold import evaluate_cold
    from cllm4rec.model.cold_recommender import NewItemsRecommender
    from cllm4rec.model.new_items import PlacementOptions

    cold = NewItemsRecommender(recommender, PlacementOptions(seed=seed)).fit(dataset, split=split)
    try:
        rankings = evaluate_cold(cold, dataset, split, progress=progress, seed=seed)
    finally:
        cold.restore()
    return {"metrics_cold": rankings["cold"].metrics, "metrics_all": rankings["all"].metrics}
