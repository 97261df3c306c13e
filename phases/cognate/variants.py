"""``forge variants``: the table of registered variants, each resolved as a run would resolve it.

A row holds the variant's task, architecture, recursion (layers, n, T, N_sup, effective depth),
callbacks and, with ``with_parameters``, its parameter count, from the model built on the meta
device (shapes only). A variant that does not validate shows its error instead of hiding the rest.
"""

from __future__ import annotations

from typing import Any

import torch

from agent_forge.phases.cognate.building import count_parameters, task_spec_for
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.plugin_host import PluginHost
from agent_forge.phases.cognate.hookspecs import VariantSpec
from agent_forge.specs import ArchitectureSpec


def describe_variants(host: PluginHost, with_parameters: bool = True) -> list[dict[str, Any]]:
    rows = []
    for name, variant in sorted(host.items(VariantSpec).items()):
        row: dict[str, Any] = {"name": name, "description": variant.description,
                               "plugin": host.plugin_of(VariantSpec, name)}
        try:
            cfg = validate_cognate(host, dict(variant.config))
            m = cfg.model
            row.update(task=cfg.task_name, architecture=cfg.architecture, d_model=getattr(m, "d_model", None),
                       layers=getattr(m, "n_layers", None), n=getattr(m, "n", None), T=getattr(m, "T", None),
                       n_sup=getattr(m, "n_sup", 1), mixer=getattr(m, "mixer", None),
                       effective_depth=m.effective_depth() if hasattr(m, "effective_depth") else None,
                       callbacks=sorted(cfg.callbacks))
            if with_parameters:
                spec = task_spec_for(host, cfg)
                with torch.device("meta"):  # shapes only: no memory, no init time
                    model = host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, spec)
                embed = sum(p.numel() for n_, p in model.named_parameters() if n_.startswith(("embed", "head")))
                row.update(parameters=count_parameters(model), non_embedding_parameters=count_parameters(model) - embed,
                           vocab_size=spec.vocab_size, seq_len=spec.seq_len)
        except Exception as exc:  # one broken variant must not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows
