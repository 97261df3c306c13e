"""Built-in metrics loggers: jsonl, csv, tensorboard, wandb (offline) and mlflow (local store).

tensorboard is a dependency of agent-forge; wandb and mlflow are extras. Each imports its package
only when a run selects it, and a missing package is a ConfigError naming the install command
(``pip install 'agent-forge[wandb]'``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field

from agent_forge import hookimpl
from agent_forge.config import StrictModel, flatten
from agent_forge.errors import ConfigError
from agent_forge.files import atomic_write_bytes
from agent_forge.loggers import Logger
from agent_forge.specs import LoggerSpec


def _require(module: str, install: str, logger: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"logger {logger!r} needs the package {module!r}: install it with"
                          f" {install} (or leave {logger} out of --logger)") from None


def _json_value(value: Any) -> Any:
    # JSON has no NaN/inf: write them as strings a reader can still parse.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonlLogger(Logger):
    """``metrics.jsonl``: one object per row, ``{"kind": ..., "step": ..., **metrics}``, appended
    and flushed as training goes. On resume, rows after the checkpoint's step are dropped (the
    resumed run logs them again)."""

    def __init__(self, cfg: Any, run_dir: Path) -> None:
        self.path = run_dir / "metrics.jsonl"

    def start(self, config: dict[str, Any], *, resume_step: int | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None or not self.path.exists():
            self.path.write_text("")
            return
        rows = [line for line in self.path.read_text().splitlines()
                if line.strip() and int(json.loads(line).get("step", 0)) <= resume_step]
        atomic_write_bytes(self.path, "".join(r + "\n" for r in rows).encode())

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        row = {"kind": kind, "step": step, **{k: _json_value(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


class CsvLogger(Logger):
    """``metrics.csv`` in long form — ``kind,step,metric,value`` — so rows whose metrics differ
    (train vs eval, a metric that appears later) share one file; pivot it to get a table."""

    HEADER = ["kind", "step", "metric", "value"]

    def __init__(self, cfg: Any, run_dir: Path) -> None:
        self.path = run_dir / "metrics.csv"

    def start(self, config: dict[str, Any], *, resume_step: int | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[list[str]] = []
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                kept = [r for r in list(csv.reader(f))[1:] if r and int(r[1]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerows([self.HEADER, *kept])

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerows([kind, step, name, repr(float(v))] for name, v in metrics.items())


class TensorBoardConfig(StrictModel):
    flush_secs: int = Field(10, ge=1, description="Seconds between flushes of the event file.")


class TensorBoardLogger(Logger):
    """Event files under ``tensorboard/``: every metric as a scalar tagged ``<kind>/<name>``
    (``train/loss``, ``eval/ema/exact_accuracy``), the config as text, the report's plots as
    images. ``tensorboard --logdir runs`` shows every run side by side."""

    @classmethod
    def check_available(cls) -> None:
        _require("tensorboard", "pip install tensorboard", "tensorboard")

    def __init__(self, cfg: TensorBoardConfig, run_dir: Path) -> None:
        _require("tensorboard", "pip install tensorboard", "tensorboard")
        self.cfg, self.dir, self.writer = cfg, run_dir / "tensorboard", None

    def start(self, config: dict[str, Any], *, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: on resume, events after the checkpoint are hidden (they are logged again).
        self.writer = SummaryWriter(str(self.dir), flush_secs=self.cfg.flush_secs,
                                    purge_step=None if resume_step is None else resume_step + 1)
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=2, default=str) + "\n```",
                             global_step=resume_step or 0)

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"{kind}/{name}", float(value), global_step=step)

    def log_image(self, tag: str, path: Path, step: int) -> None:
        from matplotlib import image

        pixels = image.imread(str(path))  # (H, W, 3 or 4) floats in [0, 1] for a PNG
        self.writer.add_image(tag, pixels[..., :3], global_step=step, dataformats="HWC")

    def finish(self, status: str) -> None:
        if self.writer is not None:
            self.writer.add_text("status", status)
            self.writer.close()


class WandbConfig(StrictModel):
    project: str = Field("agent-forge", min_length=1)
    mode: Literal["offline", "disabled"] = Field(
        "offline", description="offline: files under wandb/ to `wandb sync` later (nothing is sent at run time).")


class WandbLogger(Logger):
    """Weights & Biases in offline mode: a run folder under ``wandb/`` that ``wandb sync``
    uploads later. Nothing goes over the network during the run."""

    @classmethod
    def check_available(cls) -> None:
        _require("wandb", "pip install 'agent-forge[wandb]'", "wandb")

    def __init__(self, cfg: WandbConfig, run_dir: Path) -> None:
        self.wandb = _require("wandb", "pip install 'agent-forge[wandb]'", "wandb")
        self.cfg, self.run_dir, self.run = cfg, run_dir, None

    def start(self, config: dict[str, Any], *, resume_step: int | None = None) -> None:
        self.run = self.wandb.init(project=self.cfg.project, mode=self.cfg.mode, dir=str(self.run_dir),
                                   name=self.run_dir.name, id=self.run_dir.name, config=config,
                                   resume="allow" if resume_step is not None else None)

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        self.run.log({f"{kind}/{k}": float(v) for k, v in metrics.items()}, step=step)

    def log_image(self, tag: str, path: Path, step: int) -> None:
        self.run.log({tag: self.wandb.Image(str(path))}, step=step)

    def finish(self, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "completed" else 1)


class MlflowConfig(StrictModel):
    experiment: str = Field("agent-forge", min_length=1)
    tracking_uri: str | None = Field(
        None, description="Default: a local file store in the run folder (mlruns/); `mlflow ui` reads it.")


class MlflowLogger(Logger):
    """MLflow with a local file store (``mlruns/`` in the run folder unless ``tracking_uri`` says
    otherwise): params from the flattened config, metrics per step, plots as artifacts."""

    @classmethod
    def check_available(cls) -> None:
        _require("mlflow", "pip install 'agent-forge[mlflow]'", "mlflow")

    def __init__(self, cfg: MlflowConfig, run_dir: Path) -> None:
        self.mlflow = _require("mlflow", "pip install 'agent-forge[mlflow]'", "mlflow")
        self.cfg, self.run_dir = cfg, run_dir

    def start(self, config: dict[str, Any], *, resume_step: int | None = None) -> None:
        self.mlflow.set_tracking_uri(self.cfg.tracking_uri or (self.run_dir / "mlruns").resolve().as_uri())
        self.mlflow.set_experiment(self.cfg.experiment)
        self.mlflow.start_run(run_name=self.run_dir.name)
        self.mlflow.log_params({k: str(v)[:500] for k, v in flatten(config, keep_empty=False).items()})

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        # MLflow metric names may not contain some characters; slashes are allowed.
        self.mlflow.log_metrics({f"{kind}/{k}": float(v) for k, v in metrics.items()}, step=step)

    def log_image(self, tag: str, path: Path, step: int) -> None:
        self.mlflow.log_artifact(str(path))

    def finish(self, status: str) -> None:
        self.mlflow.end_run(status="FINISHED" if status == "completed" else "KILLED")


@hookimpl
def forge_register_loggers(register: Callable[[LoggerSpec], None]) -> None:
    register(LoggerSpec("jsonl", JsonlLogger, description="metrics.jsonl: the run's own record (report, forge runs)"))
    register(LoggerSpec("csv", CsvLogger, description="metrics.csv in long form: kind,step,metric,value"))
    register(LoggerSpec("tensorboard", TensorBoardLogger, config=TensorBoardConfig,
                        check_available=TensorBoardLogger.check_available,
                        description="TensorBoard event files under tensorboard/"))
    register(LoggerSpec("wandb", WandbLogger, config=WandbConfig, check_available=WandbLogger.check_available,
                        description="Weights & Biases, offline (extra: wandb)"))
    register(LoggerSpec("mlflow", MlflowLogger, config=MlflowConfig, check_available=MlflowLogger.check_available,
                        description="MLflow, local file store (extra: mlflow)"))
