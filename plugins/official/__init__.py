"""The bridge to the official TRM code (SamsungSAILMontreal/TinyRecursiveModels).

* ``forge import official STEP_FILE --out DIR``: its checkpoint as a verified artifact.
* ``forge export ARTIFACT DIR --format official``: an artifact as its ``step_N`` + ``all_config.yaml``.

The tensor map and the config mapping live in :mod:`agent_forge.plugins.official.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from agent_forge import hookimpl
from agent_forge.specs import ExportFormatSpec


def import_official_cmd(
    path: Path = typer.Argument(..., help="A step_N checkpoint written by the official pretrain.py."),
    out: Path = typer.Option(..., "--out", help="The folder to write the artifact into (new or empty)."),
    config: Optional[Path] = typer.Option(None, "--config", help="The run's all_config.yaml (default: the one"
                                          " beside the checkpoint)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", min=1, help="Sequence length without the puzzle"
                                          " prefix (81 for 9x9 Sudoku, 900 for Maze-Hard and ARC), when the"
                                          " weights do not say it and the dataset folder is not at hand."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a folder that is not empty."),
) -> None:
    """Import a checkpoint of the official TRM code as a verified agent-forge artifact.

    The architecture comes from all_config.yaml; vocabulary, puzzle table and sequence length from
    the tensors. Every tensor is mapped or the import is refused by name. The file is read with
    torch.load(weights_only=True): one that needs a full unpickle is refused."""
    from agent_forge.logging import stdout_console
    from agent_forge.plugins.official.convert import import_official

    manifest = import_official(path, out, config_path=config, seq_len=seq_len, overwrite=overwrite)
    stdout_console().print(f"imported {path} -> {manifest} (check it: forge inspect {manifest})", soft_wrap=True)


def export_official(manifest: Path, out: Path, *, overwrite: bool = False) -> list[Path]:
    from agent_forge.plugins.official.convert import export_official as write

    return write(manifest, out, overwrite=overwrite)


@hookimpl
def forge_register_commands(cli):
    from agent_forge.cli import command_group

    group = command_group(cli, "import", help="Bring models trained by other code in as verified artifacts.")
    group.command("official")(import_official_cmd)


@hookimpl
def forge_register_export_formats(register: Callable[[ExportFormatSpec], None]) -> None:
    register(ExportFormatSpec("official", export_official,
                              description="The official TRM code's step_N checkpoint and all_config.yaml (fp32)"))
