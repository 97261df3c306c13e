"""The named arm sets of ``forge ablate --arms``: each expands against the base variant's config.

Every set runs the base variant itself first, as arm ``base``; :data:`ARM_SET_GROUPS` names groups
of sets (``--arms paper``).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from agent_forge.config import apply_overrides
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.ablation.arms import Arm, flow
from agent_forge.plugin_host import PluginHost
from agent_forge.phases.cognate.hookspecs import VariantSpec


def _ema_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    return [Arm("no_ema", base, ("callbacks.ema=null",))]


def _recursion_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    return [Arm(f"T{T}_n{n}", base, (f"model.T={T}", f"model.n={n}")) for T, n in ((3, 6), (3, 2), (2, 6), (2, 2))]


def _mixer_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    # The official commands: mlp_t with pos_encodings=none; attention with RoPE.
    return [Arm("mlp", base, ("model.mixer=mlp_official", "model.rope=false", "model.learned_positions=false")),
            Arm("attention", base, ("model.mixer=attention", "model.rope=true", "model.learned_positions=false"))]


def _layers_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    return [Arm("layers2", base, ("model.n_layers=2",)), Arm("layers1", base, ("model.n_layers=1",))]


def _deep_supervision_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    # One supervision step per sample, nothing to halt on: no ACT (and no halting head) and no
    # supervision cut. Every optimizer step runs one supervision step on B rows whatever n_sup
    # is, so at the same budget both arms take the same number of equally costly steps.
    return [Arm("nsup1", base, ("model.n_sup=1", "callbacks.act=null", "callbacks.early_stop=null"))]


#: TRM model fields the non-recursive baseline shares (its own ``mixer`` has no ``mlp_official``).
_BASELINE_FIELDS = ("d_model", "n_heads", "head_dim", "n_kv_heads", "expansion", "causal", "rope",
                    "learned_positions")


def _baseline_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    model = cfg.get("model") or {}
    if model.get("architecture") != "trm":
        raise ConfigError(f"--arms baseline: the base variant {base!r} is not a TRM (architecture"
                          f" {model.get('architecture')!r}); pass --base trm_paper or another TRM variant")
    settings = {k: model[k] for k in _BASELINE_FIELDS if k in model}
    mixer = model.get("mixer", "attention")
    settings["mixer"] = "mlp" if mixer == "mlp_official" else mixer
    layers = int(model.get("n_layers", 2))
    depth = layers * (int(model.get("n", 3)) + 1) * int(model.get("T", 3))
    callbacks = {k: v for k, v in (cfg.get("callbacks") or {}).items() if k not in ("act", "memory", "early_stop")}
    shared = tuple(f"model.{k}={flow(v)}" for k, v in settings.items()) + (f"callbacks={flow(callbacks)}",)
    if cfg.get("evaluators"):
        shared += (f"evaluators={flow(cfg['evaluators'])}",)
    if "loss" in (cfg.get("trainer") or {}):
        shared += (f"trainer.loss={flow(cfg['trainer']['loss'])}",)
    return [Arm("baseline_params", "baseline", shared + (f"model.n_layers={layers}",)),
            Arm("baseline_depth", "baseline", shared + (f"model.n_layers={depth}",))]


def _lm_seed002_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    # Seed 002's experiments as a ladder from its control (n=2, T=1, N_sup=4, lm_baseline_70m):
    # A raises n to 3, B adds T=2 on top, C doubles N_sup on top (= config A's recursion). Each arm
    # evaluates with the N_sup it trained with ("match training"). A base that is the control
    # itself folds the control arm into it (same_as).
    def arm(name: str, n: int, T: int, n_sup: int) -> Arm:
        return Arm(name, base, (f"model.n={n}", f"model.T={T}", f"model.n_sup={n_sup}",
                                f"model.n_sup_inference={n_sup}"))

    return [arm("control", 2, 1, 4), arm("A_n3", 3, 1, 4), arm("B_n3_T2", 3, 2, 4), arm("C_n3_T2_nsup8", 3, 2, 8)]


#: Named arm sets: ``name -> (what it compares, arms from (base variant, its config))``. Every set
#: runs the base variant itself first, as arm ``base``.
ARM_SETS: dict[str, tuple[str, Callable[[str, dict[str, Any]], list[Arm]]]] = {
    "ema": ("EMA of the weights on (base) and off (no_ema: callbacks.ema=null)", _ema_arms),
    "recursion": ("T cycles x n latent updates: T3_n6 (the paper's), T3_n2, T2_n6, T2_n2", _recursion_arms),
    "mixer": ("token mixing: mlp (mlp_official, no position encoding) vs attention (RoPE), as the official"
              " commands", _mixer_arms),
    "layers": ("layers in the shared network: layers2 vs layers1 (n, T unchanged)", _layers_arms),
    "deep-supervision": ("nsup1: one supervision step per sample (no ACT), at the same compute per optimizer"
                         " step and the same budget", _deep_supervision_arms),
    "baseline": ("the non-recursive transformer: baseline_params (n_layers = L: the TRM's parameters) and"
                 " baseline_depth (n_layers = L*(n+1)*T: the layers one supervision step runs)", _baseline_arms),
    "lm-seed002": ("seed 002's experiments on a causal LM, a ladder from its control (n=2, T=1, N_sup=4): A_n3,"
                   " B_n3_T2 (A + T=2), C_n3_T2_nsup8 (B + N_sup=8); use --base lm_baseline_70m (or a shrunk"
                   " copy via --set)", _lm_seed002_arms),
}
#: ``--arms paper``: every puzzle set above (not the LM's), the base run once.
ARM_SET_GROUPS = {"paper": tuple(k for k in ARM_SETS if k != "lm-seed002")}


def expand_arm_sets(host: PluginHost, names: list[str], base: str, overrides: list[str] | tuple[str, ...] = ()
                    ) -> list[Arm]:
    """The arms of each named set, against ``base``'s config with ``overrides`` (the shared
    ``--set`` values) applied; ``base`` first."""
    spec = host.get(VariantSpec, base).config
    cfg = apply_overrides(copy.deepcopy(dict(spec)), list(overrides))
    arms = [Arm("base", base)]
    for name in names:
        for set_name in ARM_SET_GROUPS.get(name, (name,)):
            if set_name not in ARM_SETS:
                known = ", ".join([*ARM_SETS, *ARM_SET_GROUPS])
                raise ConfigError(f"--arms {name!r}: no such arm set; known: {known}")
            arms += ARM_SETS[set_name][1](base, cfg)
    return arms
