"""Convert a run folder from before checkpoints became self-contained (no catalogue, no manifest).

Each such checkpoint gets its run's config, the identity of the dataset it was trained on, the ID catalogue
(read from that dataset, which must still exist and hash the same) and a file manifest. Weights, optimizer
state and logs are left as they are.
"""

from __future__ import annotations

from pathlib import Path

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.runs.checkpoint import MANIFEST, RunRecord, damaged_message, is_legacy, read_state, write_manifest
from cllm4rec.runs.folder import STAGES, RunFolder


def upgrade_run(run_dir: str | Path, data: str | Path | None = None) -> list[Path]:
    """Make every checkpoint of ``run_dir`` self-contained; returns the checkpoints it changed."""
    run = RunFolder(Path(run_dir))
    info = run.info()
    pending = []
    for stage in STAGES:
        for path in (run.last(stage), run.best(stage)):
            if read_state(path) is None or (path / MANIFEST).is_file():
                continue
            if not is_legacy(path):  # has a catalogue or dataset record: written by this version, then damaged
                raise CLLM4RecError(damaged_message(path) + "; upgrade-run converts only old-format checkpoints")
            pending.append(path)
    if not pending:
        return []
    source = data or info.get("dataset")
    if source is None or not Path(source).is_dir():
        raise CLLM4RecError(f"the dataset of {run.root} is not at {source}; give its folder with --data DIR")
    dataset = Dataset.load(source)
    run.check_dataset(dataset)
    record = RunRecord.from_dataset(run.config(), dataset)
    for path in pending:
        record.save(path)
        write_manifest(path)
    return pending
