"""An agent-forge plugin that registers one thing of each kind, each through its typed spec.

* ``cell_mlp`` (an :class:`ArchitectureSpec`) looks at each cell alone (no token mixing): a
  deliberately weak control model, the smallest complete architecture a plugin can add. It
  follows the model protocol with an empty carry, so the built-in trainer drives it with one
  supervision step. The file keeps the two halves every architecture plugin has: the model (plain
  torch: a config dataclass and a constructor with plain arguments) and the plugin (the validated
  ``model`` section and ``build(config, task_spec)``, which turns the task spec into those
  arguments).
* ``echo`` (a :class:`DatasetSpec`): copy a row of digits; it can also write example files.
* ``first_cell`` (an :class:`EvaluatorSpec`), ``loss_spike`` (a :class:`CallbackSpec`),
  ``print`` (a :class:`LoggerSpec`), ``cell_mlp_echo`` (a :class:`VariantSpec`: ``forge run phase
  cognate --variant cell_mlp_echo``), ``parameters`` (an :class:`ExportFormatSpec`), the
  ``example_summary`` phase (a :class:`PhaseSpec`) and the ``forge example-hello`` command.

A type checker accepts the whole file (the test suite runs mypy on it when mypy is installed).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import typer
from pydantic import Field
from torch import nn

from agent_forge import hookimpl, load_artifact
from agent_forge.config import DataclassConfig, StrictModel, config_from_dataclass
from agent_forge.contracts import PhaseResult, TaskSpec
from agent_forge.data import Split, TaskData
from agent_forge.loggers import Logger
from agent_forge.models.fields import check_options, option
from agent_forge.models.protocol import Batch, Carry, ModelOutput
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainState, VariantSpec
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer
from agent_forge.runner import Phase, PhaseContext
from agent_forge.specs import (ArchitectureSpec, DatasetSpec, EvaluatorSpec, ExportFormatSpec, LoggerSpec,
                               PhaseSpec)

# --- the model: plain torch ------------------------------------------------------------------


@dataclass
class CellMLPConfig:
    d_model: int = option(32, "Embedding width.", ge=1)
    hidden: int = option(64, "Hidden width of the per-cell MLP.", ge=1)

    def __post_init__(self) -> None:
        check_options(self)


class CellMLP(nn.Module):
    n_sup = 1  # not recursive: one supervision step

    def __init__(self, cfg: CellMLPConfig, *, vocab_size: int, seq_len: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.position = nn.Parameter(torch.zeros(seq_len, cfg.d_model))
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, vocab_size))

    def initial_carry(self, batch: Batch) -> Carry:
        return {}

    def forward(self, carry: Carry, batch: Batch) -> tuple[Carry, ModelOutput]:
        h = self.embed(batch["inputs"]) + self.position  # (batch, seq, d_model)
        return {}, ModelOutput(logits=self.mlp(h))


# --- the architecture plugin: config section and translation of the task spec ----------------


#: The ``model`` section of ``cell_mlp``: the dataclass's fields, strict (a typo is an error).
CellMLPSettings = config_from_dataclass(CellMLPConfig)


def build_cell_mlp(config: DataclassConfig, task: TaskSpec) -> CellMLP:
    cfg: CellMLPConfig = config.to_dataclass()
    return CellMLP(cfg, vocab_size=task.vocab_size, seq_len=task.seq_len)


# --- a task ----------------------------------------------------------------------------------


class EchoConfig(StrictModel):
    """The ``task`` section of ``echo``."""

    length: int = Field(8, ge=1, le=64, description="Digits per row.")
    train_count: int = Field(512, ge=1)
    eval_count: int = Field(64, ge=1)


def build_echo(config: EchoConfig, seed: int) -> TaskData:
    """Rows of random digits; the target is the row itself."""
    generator = torch.Generator().manual_seed(seed)

    def rows(n: int) -> Split:
        digits = torch.randint(0, 10, (n, config.length), generator=generator)
        return Split(digits, digits.clone())

    spec = TaskSpec(name="echo", vocab_size=10, seq_len=config.length)
    return TaskData(spec=spec, train=rows(config.train_count), eval=rows(config.eval_count))


def generate_echo(config: EchoConfig, count: int, seed: int) -> tuple[list[str], list[str]]:
    """``forge data generate echo``: ``count`` question,answer rows as text."""
    inputs = build_echo(config.model_copy(update={"train_count": count}), seed).train.inputs
    text = ["".join(str(int(d)) for d in row) for row in inputs]
    return text, text


# --- an evaluator, a callback and a logger ---------------------------------------------------


def first_cell(model: nn.Module, task: TaskData, ctx: Any) -> dict[str, float]:
    """The share of rows whose first cell is right after all supervision steps."""
    split: Split = getattr(task, ctx.split)
    final = ctx.predictions().final
    return {"first_cell_accuracy": float((final[:, 0] == split.targets[:, 0]).float().mean())}


class LossSpikeConfig(StrictModel):
    factor: float = Field(10.0, gt=1, description="Stop when the loss exceeds this multiple of its first value.")


class LossSpike(Callback):
    """Stops a run whose logged loss jumps above ``factor`` times its first logged value."""

    def __init__(self, cfg: LossSpikeConfig) -> None:
        self.cfg = cfg
        self.first: float | None = None

    def on_log(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        loss = state.metrics["loss"]
        self.first = self.first or loss
        if loss > self.cfg.factor * self.first:
            state.should_stop, state.stop_reason = True, f"loss spiked at step {state.step}"

    def state_dict(self) -> dict[str, Any]:
        return {"first": self.first}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.first = saved["first"]


class PrintLogger(Logger):
    """Prints the loss of every training row on stderr (stdout is for results; rank 0 only: the host
    makes sure)."""

    def __init__(self, cfg: None, run_dir: Path) -> None:
        self.run_dir = run_dir

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        if kind == "train":
            print(f"{self.run_dir.name} step {step}: loss {metrics['loss']:.4f}", file=sys.stderr)


# --- an export format and a phase ------------------------------------------------------------


def write_parameters(manifest: Path, out: Path, *, overwrite: bool) -> list[Path]:
    """``forge export ARTIFACT DIR --format parameters``: one line per tensor, name and shape."""
    _, weights = load_artifact(manifest)  # verifies the checksum first
    path = out / "parameters.txt"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name} {tuple(t.shape)}\n" for name, t in sorted(weights.items())))
    return [path]


class SummaryPhase(Phase):
    """Counts the models the previous phase handed on (``forge run pipeline cognate,example_summary``)."""

    name = "example_summary"

    def run(self, ctx: PhaseContext) -> PhaseResult:
        start = time.monotonic()
        models = len(ctx.previous.artifacts) if ctx.previous is not None else 0
        return PhaseResult(phase=self.name, status="completed", metrics={"models": float(models)},
                           run_dir=ctx.run_dir, duration_s=time.monotonic() - start)


# --- the hooks -------------------------------------------------------------------------------


@hookimpl
def forge_register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    register(ArchitectureSpec("cell_mlp", build_cell_mlp, config=CellMLPSettings,
                              description="Per-cell MLP (example plugin)"))


@hookimpl
def forge_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DatasetSpec("echo", build_echo, config=EchoConfig, generate=generate_echo,
                         description="Copy a row of digits (example plugin)"))


@hookimpl
def forge_register_evaluators(register: Callable[[EvaluatorSpec], None]) -> None:
    register(EvaluatorSpec("first_cell", first_cell, description="Accuracy on the first cell (example plugin)"))


@hookimpl
def forge_register_callbacks(register: Callable[[CallbackSpec], None]) -> None:
    register(CallbackSpec("loss_spike", LossSpike, config=LossSpikeConfig,
                          description="Stop on a loss spike (example plugin)"))


@hookimpl
def forge_register_loggers(register: Callable[[LoggerSpec], None]) -> None:
    register(LoggerSpec("print", PrintLogger, description="Print the training loss (example plugin)"))


@hookimpl
def forge_register_variants(register: Callable[[VariantSpec], None]) -> None:
    register(VariantSpec("cell_mlp_echo", {
        "model": {"architecture": "cell_mlp", "hidden": 32},
        "task": {"name": "echo"},
        "trainer": {"batch_size": 32, "max_steps": 50, "eval_every": None, "precision": "fp32"},
        "callbacks": {"loss_spike": {}},
        "evaluators": ["exact", "token", "first_cell"],
    }, description="cell_mlp on echo (example plugin)"))


@hookimpl
def forge_register_export_formats(register: Callable[[ExportFormatSpec], None]) -> None:
    register(ExportFormatSpec("parameters", write_parameters,
                              description="parameters.txt: every tensor's name and shape (example plugin)"))


@hookimpl
def forge_register_phases(register: Callable[[PhaseSpec], None]) -> None:
    register(PhaseSpec("example_summary", SummaryPhase, description="Count the models handed on (example plugin)"))


@hookimpl
def forge_register_commands(cli: typer.Typer) -> None:
    @cli.command("example-hello")
    def hello(name: str = "forge") -> None:
        """Say hello (proves plugin commands reach the CLI)."""
        print(f"hello from forge-example-plugin, {name}")
