"""``agent_forge.solve``: one puzzle, one call, from Python (the same as ``forge solve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_forge.errors import ConfigError
from agent_forge.specs import PhaseSpec


def solve(artifact: str | Path, puzzle: str, *, samples: int = 1, noise: float | None = None, select: str = "q",
          augment: int = 1, seed: int = 0, early_exit: bool = False, n_sup: int | None = None,
          device: str = "cpu", trajectories: bool = False, host: Any = None) -> dict[str, Any]:
    """Solve ``puzzle`` (a grid string as in the task's CSV files, e.g. a 6x6 Sudoku row by row with
    ``.`` for a blank) with the model of ``artifact`` (a manifest or an export folder, verified).

    The options are ``forge eval``'s: ``samples`` trajectories (trajectory 0 noiseless), latent
    ``noise`` (None: the documented default when samples > 1), ``select`` ``"q"``, ``"vote"`` or
    ``"verify"``, ``augment`` symmetries to vote over, ``seed``, ``early_exit``. Returns a dict
    with ``answer`` (the grid string), ``grid`` (rows of cells), ``q``, ``halt_prob``, ``steps``,
    ``picked`` (0: the noiseless trajectory), ``valid`` (the task's checker, or None) and, with
    ``trajectories``, every candidate::

        from agent_forge import solve
        r = solve("runs/x/artifacts/model-0.json", "1.3...", samples=16)
        print(r["answer"], r["q"])
    """
    if not isinstance(puzzle, str):
        raise ConfigError(f"solve(puzzle={puzzle!r}): pass the question as a string, as in the task's CSV files")
    from agent_forge.artifacts import load_artifact, manifest_file
    from agent_forge.plugin_host import get_host

    host = host or get_host()
    manifest = manifest_file(artifact)
    meta, _ = load_artifact(manifest)
    phase = host.get(PhaseSpec, meta.phase).phase_class(host)
    return phase.solve(manifest, puzzle, samples=samples, noise=noise, select=select, augment=augment, seed=seed,
                       early_exit=early_exit, n_sup=n_sup, device=device, trajectories=trajectories)
