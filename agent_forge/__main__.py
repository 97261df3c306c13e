"""``python -m agent_forge`` is the ``forge`` CLI (torchrun launches it this way)."""

from agent_forge.cli import main

if __name__ == "__main__":
    main()
