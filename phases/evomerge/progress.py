"""The per-generation progress bar (rich, on the shared console); silent when off or not a terminal."""

from __future__ import annotations

from typing import Any

from agent_forge.progress import TerminalBar


class GenerationBar(TerminalBar):
    def __init__(self, enabled: bool, total: int, done: int) -> None:
        def columns(rp: Any) -> list[Any]:
            return [rp.TextColumn("[bold]evomerge"), rp.BarColumn(), rp.MofNCompleteColumn(),
                    rp.TextColumn("{task.description}"), rp.TimeElapsedColumn()]

        super().__init__(enabled and total > 0, columns, total=total, completed=done)

    def update(self, row: dict[str, Any]) -> None:
        self.set(completed=row["generation"], description=f"best {row['best']:.3f} mean {row['mean']:.3f}")
