"""The models are plain torch: built from plain arguments, importing nothing else of agent-forge."""

import ast
from pathlib import Path

import pytest
import torch

from agent_forge.models.fields import OptionError
from agent_forge.models.transformer import TransformerBaseline, TransformerConfig
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_trm_and_baseline_build_from_plain_arguments_and_run():
    torch.manual_seed(0)
    batch = {"inputs": torch.randint(0, 7, (2, 12)), "puzzle_ids": torch.tensor([0, 4])}
    trm = TRMEnhancedCognate(TRMConfig(d_model=16, n_layers=1, n_heads=2, n=1, T=2, n_sup=2),
                             vocab_size=7, seq_len=12, causal=True, num_puzzle_ids=5)
    carry, out = trm(trm.initial_carry(batch), batch)
    assert out.logits.shape == (2, 12, 7) and out.q_halt_logits.shape == (2,) and set(carry) == {"y", "z"}
    assert trm.embed.puzzle.shape == (5, 16) and trm.n_sup == 2
    base = TransformerBaseline(TransformerConfig(d_model=16, n_layers=2, n_heads=2), vocab_size=7, seq_len=12)
    carry, out = base(base.initial_carry(batch), batch)
    assert carry == {} and out.logits.shape == (2, 12, 7) and base.embed.puzzle is None


def test_config_causal_overrides_the_task_default():
    trm = TRMEnhancedCognate(TRMConfig(d_model=16, n_layers=1, n_heads=2, causal=False),
                             vocab_size=7, seq_len=12, causal=True)
    assert trm.net.blocks[0].mixer.causal is False
    base = TransformerBaseline(TransformerConfig(d_model=16, n_layers=1, n_heads=2), vocab_size=7, seq_len=12,
                               causal=True)
    assert base.blocks[0].mixer.causal is True


@pytest.mark.parametrize("config,kwargs,field", [
    (TRMConfig, {"n": 0}, "n"),
    (TRMConfig, {"memory": "huge"}, "memory"),
    (TRMConfig, {"d_model": 30, "n_heads": 4}, "n_heads"),
    (TRMConfig, {"step_scale_min": 2.0}, "step_scale_min"),
    (TransformerConfig, {"n_heads": 4, "n_kv_heads": 3}, "n_kv_heads"),
    (TransformerConfig, {"mixer": "mlp", "causal": True}, "causal"),
])
def test_config_dataclasses_refuse_bad_values_naming_the_field(config, kwargs, field):
    with pytest.raises(OptionError) as err:
        config(**kwargs)
    assert err.value.field == field and field in str(err.value)


def test_model_files_import_only_torch_the_standard_library_and_each_other():
    import sys

    for path in sorted(MODELS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = (top == "torch" or top in sys.stdlib_module_names or name == "__future__"
                      or name == "agent_forge.models" or name.startswith("agent_forge.models."))
                assert ok, f"{path.name} imports {name}: models are plain torch + the standard library"


# Run in a fresh interpreter: which modules does importing the model file load?
_LOADED_BY_TRM = """
import json, sys
import agent_forge.models.trm
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
TRMEnhancedCognate(TRMConfig(d_model=16, n_layers=1, n_heads=2, n=1, T=1, n_sup=1), vocab_size=5, seq_len=4)
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_trm_loads_torch_and_the_model_files_only():
    """``agent_forge.models.trm`` is liftable like nanoGPT's model.py: importing it (and building a
    model) loads none of the pipeline: no core module beyond the package's threading default, and
    none of the pipeline's libraries."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LOADED_BY_TRM], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    ours = {m for m in loaded if m == "agent_forge" or m.startswith("agent_forge.")}
    # agent_forge/__init__.py sets libgomp's wait default before torch loads (threading_env.py).
    beyond_models = sorted(m for m in ours if not m.startswith("agent_forge.models")
                           and m not in ("agent_forge", "agent_forge.threading_env"))
    assert beyond_models == [], f"importing agent_forge.models.trm loaded the pipeline: {beyond_models}"
    assert "agent_forge.models.trm" in ours  # the check saw the import it is about
    pipeline_libraries = ("pluggy", "pydantic", "structlog", "rich", "typer", "yaml", "safetensors")
    assert sorted(m for m in loaded if m.split(".")[0] in pipeline_libraries) == []
