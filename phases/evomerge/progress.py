"""The per-generation progress bar (rich, on the shared console); silent when off or not a terminal."""

from __future__ import annotations

from typing import Any


class GenerationBar:
    def __init__(self, enabled: bool, total: int, done: int) -> None:
        from agent_forge.logging import console

        self.bar = None
        if enabled and console.is_terminal and total > 0:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]evomerge"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
            self.task = self.bar.add_task("", total=total, completed=done)

    def __enter__(self) -> "GenerationBar":
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def update(self, row: dict[str, Any]) -> None:
        if self.bar:
            self.bar.update(self.task, completed=row["generation"],
                            description=f"best {row['best']:.3f} mean {row['mean']:.3f}")
