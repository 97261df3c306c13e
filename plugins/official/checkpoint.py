"""Checkpoints of the official TRM code (SamsungSAILMontreal/TinyRecursiveModels), both ways.

The official ``pretrain.py`` saves ``torch.save(model.state_dict(), "step_N")`` of its
``torch.compile``d ``ACTLossHead(TinyRecursiveReasoningModel_ACTV1)`` (keys ``_orig_mod.model.
inner.*``; ``model.inner.*`` when compile is off) and, beside it, ``all_config.yaml`` (its
``PretrainConfig``: the ``arch`` section and the training settings). The architecture comes from
that file; vocabulary size, sequence length and the number of puzzle identifiers come from the
tensors' shapes (the sequence length from ``--seq-len``, the dataset's ``dataset.json`` or our own
export's record when the weights do not say it: RoPE tables are not saved).

The tensor map (official ``model.inner.`` name -> ours; ``{i}`` is a layer):

=================================================  ==========================================
official                                           agent-forge ``trm``
=================================================  ==========================================
``embed_tokens.embedding_weight``                  ``embed.weight``
``embed_pos.embedding_weight`` (learned)           ``embed.position``
``puzzle_emb.weights``                             ``embed.puzzle``
``lm_head.weight``                                 ``head.weight``
``q_head.weight`` / ``.bias`` (2 rows)             ``q_head.weight`` / ``.bias`` (row 0 = q_halt;
                                                   both rows with ``q_continue``)
``H_init`` / ``L_init``                            ``y_init`` / ``z_init``
``L_level.layers.{i}.self_attn.qkv_proj.weight``   ``net.blocks.{i}.mixer.qkv.weight``
``L_level.layers.{i}.self_attn.o_proj.weight``     ``net.blocks.{i}.mixer.out.weight``
``L_level.layers.{i}.mlp_t.gate_up_proj.weight``   ``net.blocks.{i}.mixer.mlp.gate_up.weight``
``L_level.layers.{i}.mlp_t.down_proj.weight``      ``net.blocks.{i}.mixer.mlp.down.weight``
``L_level.layers.{i}.mlp.gate_up_proj.weight``     ``net.blocks.{i}.mlp.gate_up.weight``
``L_level.layers.{i}.mlp.down_proj.weight``        ``net.blocks.{i}.mlp.down.weight``
=================================================  ==========================================

Files are read with ``torch.load(weights_only=True)`` and ``yaml.safe_load`` only: a checkpoint
that needs a full unpickle is refused, never executed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agent_forge.errors import ArtifactError, ConfigError

#: The official model class this module maps (``arch.name`` in all_config.yaml).
OFFICIAL_ARCH = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
#: Official architectures that agent-forge does not implement, with what they are.
UNSUPPORTED_ARCHS = {
    "hrm": "the Hierarchical Reasoning Model",
    "trm_singlez": "TRM with a single latent state",
    "trm_hier6": "the 6-level hierarchical TRM variant",
    "transformers_baseline": "the official non-recursive transformer baseline",
}
#: The official learned-position scale, 1/sqrt(2) as its code writes it.
OFFICIAL_POSITION_SCALE = 0.707106781
#: The official Q-head starts at weight 0, bias -5 (what an untrained continue row holds).
Q_INIT_BIAS = -5.0
#: The official training settings (config/cfg_pretrain.yaml) written into an exported all_config.yaml.
OFFICIAL_TRAINING_DEFAULTS: dict[str, Any] = {
    "data_paths": ["data/your-dataset"], "data_paths_test": [], "evaluators": [],
    "global_batch_size": 768, "epochs": 100000, "eval_interval": 10000, "checkpoint_every_eval": True,
    "lr": 1e-4, "lr_min_ratio": 1.0, "lr_warmup_steps": 2000, "beta1": 0.9, "beta2": 0.95,
    "weight_decay": 0.1, "puzzle_emb_weight_decay": 0.1, "puzzle_emb_lr": 1e-2, "seed": 0,
    "min_eval_interval": 0, "ema": False, "ema_rate": 0.999, "freeze_weights": False,
    "project_name": None, "run_name": None, "load_checkpoint": None, "checkpoint_path": None,
    "eval_save_outputs": [],
}
PREFIXES = ("_orig_mod.model.inner.", "model.inner.")


class OfficialLoss(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = "losses@ACTLossHead"
    loss_type: str = "stablemax_cross_entropy"


class OfficialArch(BaseModel):
    """The ``arch`` section of an official ``all_config.yaml`` for ``TinyRecursiveReasoningModel_ACTV1``
    (its config class's fields; defaults as there). An unknown key is refused by name."""

    model_config = ConfigDict(extra="forbid")

    name: str
    loss: OfficialLoss = OfficialLoss()
    H_cycles: int
    L_cycles: int
    H_layers: int = 0  # ignored by the official code too
    L_layers: int
    hidden_size: int
    expansion: float
    num_heads: int
    pos_encodings: str
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_max_steps: int
    halt_exploration_prob: float
    forward_dtype: str = "bfloat16"
    mlp_t: bool = False
    puzzle_emb_len: int = 16
    puzzle_emb_ndim: int = 0
    no_ACT_continue: bool = True

    def prefix_len(self) -> int:
        """The official ``puzzle_emb_len``: as set, or ceil(puzzle_emb_ndim / hidden_size) when 0."""
        return self.puzzle_emb_len or -(-self.puzzle_emb_ndim // self.hidden_size)


@dataclass
class Imported:
    """An official checkpoint in our terms: the ``trm`` model config, the task facts, our state dict."""

    model_config: dict[str, Any]
    vocab_size: int
    seq_len: int
    num_puzzle_ids: int | None
    state: dict[str, torch.Tensor]
    arch: OfficialArch
    config: dict[str, Any]
    step: int
    sha256: str
    weights_kind: Literal["raw", "ema"]


# -- reading ---------------------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_config(path: Path) -> dict[str, Any]:
    """``all_config.yaml`` as plain data (``yaml.safe_load``: no Python objects)."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; the official pretrain.py writes all_config.yaml beside its"
                          " step_N files, or pass --config FILE") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("arch"), dict):
        raise ConfigError(f"{path}: no 'arch' section; expected the official all_config.yaml (PretrainConfig)")
    return data


def parse_arch(raw: dict[str, Any], where: Path) -> OfficialArch:
    name = str(raw.get("name", ""))
    module = name.split("@")[0].split(".")[-1]
    if module in UNSUPPORTED_ARCHS:
        raise ConfigError(f"{where}: arch.name {name!r} is {UNSUPPORTED_ARCHS[module]}, which agent-forge does"
                          f" not implement; only {OFFICIAL_ARCH!r} imports")
    if name != OFFICIAL_ARCH:
        raise ConfigError(f"{where}: arch.name {name!r} is not the official TRM ({OFFICIAL_ARCH!r});"
                          " nothing else imports")
    try:
        arch = OfficialArch.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: arch.{field}: {first['msg']} (got {first.get('input')!r}); this key is not"
                          " part of the official TRM config agent-forge maps") from None
    problems = []
    if arch.pos_encodings not in ("rope", "learned", "none"):
        problems.append(f"arch.pos_encodings={arch.pos_encodings!r} (expected rope, learned or none)")
    if arch.rms_norm_eps != 1e-5:
        problems.append(f"arch.rms_norm_eps={arch.rms_norm_eps} (agent-forge's norms use 1e-5)")
    if not arch.mlp_t and arch.hidden_size % arch.num_heads:
        problems.append(f"arch.hidden_size={arch.hidden_size} is not divisible by arch.num_heads={arch.num_heads}")
    if arch.puzzle_emb_ndim == 0 and arch.puzzle_emb_len:
        problems.append(f"arch.puzzle_emb_len={arch.puzzle_emb_len} with puzzle_emb_ndim=0: the official code"
                        " builds a prefix it never fills and fails on it too; set puzzle_emb_len: 0")
    if arch.puzzle_emb_ndim > arch.prefix_len() * arch.hidden_size:
        problems.append(f"arch.puzzle_emb_ndim={arch.puzzle_emb_ndim} does not fit puzzle_emb_len="
                        f"{arch.puzzle_emb_len} positions of {arch.hidden_size}")
    if problems:
        raise ConfigError(f"{where}: cannot import: " + "; ".join(problems))
    return arch


def load_official_state(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors by name, read with ``weights_only=True`` (never a full unpickle)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such checkpoint file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; pass a step_N checkpoint file inside it") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as exc:
        raise ArtifactError(f"{path}: refused: not a checkpoint that loads with torch.load(weights_only=True)"
                            f" ({str(exc).splitlines()[0][:200]}); agent-forge never unpickles arbitrary objects."
                            " Save the model's state_dict (tensors only), as the official pretrain.py does") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ArtifactError(f"{path}: not a state dict (a mapping of names to tensors)")
    return state


def strip_prefix(state: dict[str, torch.Tensor], where: Path) -> dict[str, torch.Tensor]:
    """Names relative to ``model.inner.`` (compiled ``_orig_mod.`` prefix or not)."""
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    odd = sorted(k for k in state if not k.startswith(PREFIXES))[:3]
    raise ArtifactError(f"{where}: tensor names {odd} do not start with {' or '.join(PREFIXES)}; not a"
                        " checkpoint of the official pretrain.py (state_dict of ACTLossHead)")


def official_names(arch: OfficialArch) -> dict[str, str]:
    """Official name (relative to ``model.inner.``) -> ours, for every tensor the model saves."""
    names = {"embed_tokens.embedding_weight": "embed.weight", "lm_head.weight": "head.weight",
             "q_head.weight": "q_head.weight", "q_head.bias": "q_head.bias", "H_init": "y_init", "L_init": "z_init"}
    if arch.pos_encodings == "learned":
        names["embed_pos.embedding_weight"] = "embed.position"
    if arch.puzzle_emb_ndim > 0:
        names["puzzle_emb.weights"] = "embed.puzzle"
    for i in range(arch.L_layers):
        layer, block = f"L_level.layers.{i}.", f"net.blocks.{i}."
        if arch.mlp_t:
            names[layer + "mlp_t.gate_up_proj.weight"] = block + "mixer.mlp.gate_up.weight"
            names[layer + "mlp_t.down_proj.weight"] = block + "mixer.mlp.down.weight"
        else:
            names[layer + "self_attn.qkv_proj.weight"] = block + "mixer.qkv.weight"
            names[layer + "self_attn.o_proj.weight"] = block + "mixer.out.weight"
        names[layer + "mlp.gate_up_proj.weight"] = block + "mlp.gate_up.weight"
        names[layer + "mlp.down_proj.weight"] = block + "mlp.down.weight"
    return names


def model_config(arch: OfficialArch) -> dict[str, Any]:
    """The ``trm`` model section that computes what the official model computes."""
    learned = arch.pos_encodings == "learned"
    ndim = arch.puzzle_emb_ndim
    return {
        "d_model": arch.hidden_size, "n_layers": arch.L_layers, "n_heads": arch.num_heads,
        "expansion": arch.expansion, "n": arch.L_cycles, "T": arch.H_cycles, "n_sup": arch.halt_max_steps,
        "mixer": "mlp_official" if arch.mlp_t else "attention", "causal": False,
        "rope": arch.pos_encodings == "rope", "rope_base": arch.rope_theta,
        "learned_positions": learned, "learned_positions_scale": OFFICIAL_POSITION_SCALE if learned else 1.0,
        "puzzle_emb_len": arch.prefix_len(), "puzzle_emb_dim": ndim or None,
        # The official code trains its puzzle table with sign-SGD outside Adam (and outside EMA).
        "puzzle_emb_sparse": ndim > 0,
        "halting_head": True, "q_head_input": "first", "q_continue": not arch.no_ACT_continue,
    }


def _seq_len_from(arch: OfficialArch, state: dict[str, torch.Tensor], config: dict[str, Any],
                  given: int | None, where: Path) -> int:
    prefix = arch.prefix_len()
    found: dict[str, int] = {}
    if "embed_pos.embedding_weight" in state:
        found["embed_pos.embedding_weight"] = state["embed_pos.embedding_weight"].shape[0] - prefix
    if arch.mlp_t and "L_level.layers.0.mlp_t.gate_up_proj.weight" in state:
        found["mlp_t weights"] = state["L_level.layers.0.mlp_t.gate_up_proj.weight"].shape[1] - prefix
    recorded = (config.get("agent_forge") or {}).get("seq_len") if isinstance(config.get("agent_forge"), dict) else None
    if recorded is not None:
        found["all_config.yaml agent_forge.seq_len"] = int(recorded)
    if given is not None:
        found["--seq-len"] = given
    if not found:
        for data in config.get("data_paths") or []:
            meta = Path(str(data)) / "train" / "dataset.json"
            if not meta.is_absolute():
                meta = where.parent / meta
            try:
                found[str(meta)] = int(json.loads(meta.read_text())["seq_len"])
                break
            except (OSError, ValueError, KeyError, TypeError):
                continue
    if not found:
        raise ConfigError(f"{where}: the sequence length is not in these weights (RoPE tables are not saved);"
                          " pass --seq-len N (81 for 9x9 Sudoku, 900 for Maze-Hard and ARC)")
    values = set(found.values())
    if len(values) > 1:
        raise ConfigError(f"{where}: the sequence length disagrees: " + ", ".join(f"{k} gives {v}" for k, v in found.items()))
    seq_len = values.pop()
    if seq_len < 1:
        raise ConfigError(f"{where}: sequence length {seq_len} from {next(iter(found))} is not positive")
    return seq_len


def read_official(path: str | Path, *, config_path: str | Path | None = None,
                  seq_len: int | None = None) -> Imported:
    """Read an official ``step_N`` file (and its ``all_config.yaml``) into our ``trm`` terms.

    Every tensor is mapped or the import is refused by name: a tensor the map does not know, one it
    expects and the file lacks, and a shape that does not fit the config are all errors.
    """
    path = Path(path)
    config_file = Path(config_path) if config_path is not None else path.parent / "all_config.yaml"
    if not path.exists():
        raise ConfigError(f"{path}: no such checkpoint file")
    config = read_config(config_file)
    arch = parse_arch(config["arch"], config_file)
    raw = strip_prefix(load_official_state(path), path)
    names = official_names(arch)
    unmapped = sorted(set(raw) - set(names))
    if unmapped:
        raise ArtifactError(f"{path}: tensor(s) {', '.join(unmapped)} have no counterpart in agent-forge's TRM for"
                            f" this config ({config_file}); refusing a partial import")
    missing = sorted(set(names) - set(raw))
    if missing:
        raise ArtifactError(f"{path}: the config ({config_file}) implies tensor(s) {', '.join(missing)}, which the"
                            " checkpoint lacks; is all_config.yaml the one written with this checkpoint?")
    vocab = int(raw["embed_tokens.embedding_weight"].shape[0])
    seq = _seq_len_from(arch, raw, config, seq_len, path)
    num_ids = int(raw["puzzle_emb.weights"].shape[0]) if "puzzle_emb.weights" in raw else None
    state: dict[str, torch.Tensor] = {}
    for theirs, ours in names.items():
        # bf16 init states (forward_dtype bfloat16) widen to fp32 exactly.
        state[ours] = raw[theirs].detach().to(torch.float32).contiguous()
    if arch.no_ACT_continue:
        # Without the continue loss row 1 is never read; our head keeps q_halt only.
        state["q_head.weight"] = state["q_head.weight"][:1].contiguous()
        state["q_head.bias"] = state["q_head.bias"][:1].contiguous()
    step_match = re.fullmatch(r"step_(\d+)", path.name)
    return Imported(model_config(arch), vocab, seq, num_ids, state, arch, config,
                    int(step_match.group(1)) if step_match else 0, sha256_of(path),
                    "ema" if config.get("ema") else "raw")


# -- writing ---------------------------------------------------------------------------------
def official_arch_from(cfg: dict[str, Any], *, loss_type: str, forward_dtype: str,
                       halt_exploration_prob: float = 0.1) -> dict[str, Any]:
    """The official ``arch`` section for our ``trm`` model config ``cfg``, or a ConfigError naming
    the first setting the official model cannot express."""
    def refuse(field: str, why: str) -> None:
        raise ConfigError(f"model.{field}: {why}; the official TRM cannot express this model, so it cannot be"
                          " exported in the official format (use the default Hub layout: forge export ARTIFACT DIR)")

    d, heads = cfg["d_model"], cfg["n_heads"]
    if cfg["mixer"] not in ("attention", "mlp_official"):
        refuse("mixer", f"{cfg['mixer']!r} (official: attention, or mlp_official for mlp_t)")
    if cfg.get("causal"):
        refuse("causal", "causal attention (official: bidirectional)")
    if cfg.get("n_kv_heads") not in (None, heads):
        refuse("n_kv_heads", f"{cfg['n_kv_heads']} grouped KV heads (official: one per head)")
    if cfg.get("head_dim") not in (None, d // heads):
        refuse("head_dim", f"{cfg['head_dim']} (official: d_model // n_heads)")
    if cfg.get("memory", "none") != "none":
        refuse("memory", f"{cfg['memory']!r} (official: no memory bank)")
    if cfg.get("step_scales"):
        refuse("step_scales", "learnable step scales (official: none)")
    if cfg.get("halting_head_kind", "linear") != "linear":
        refuse("halting_head_kind", f"{cfg['halting_head_kind']!r} (official: one linear layer)")
    learned, rope = cfg.get("learned_positions"), cfg.get("rope") and cfg["mixer"] == "attention"
    if learned and rope:
        refuse("learned_positions", "learned positions and RoPE together (official: one of rope, learned, none)")
    if learned and cfg.get("learned_positions_scale") != OFFICIAL_POSITION_SCALE:
        refuse("learned_positions_scale", f"{cfg.get('learned_positions_scale')} (official: {OFFICIAL_POSITION_SCALE})")
    prefix = cfg.get("puzzle_emb_len", 0)
    reads_first = cfg.get("q_head_input", "auto") == "first" or (cfg.get("q_head_input", "auto") == "auto" and prefix)
    if not reads_first:
        refuse("q_head_input", "the Q-head reads the mean over positions (official: the first position; train with"
                               " model.puzzle_emb_len=16 or model.q_head_input=first)")
    if not prefix:
        refuse("puzzle_emb_len", "0, so no puzzle table: the official load_checkpoint reads the table's shape and"
                                 " fails without one (train with model.puzzle_emb_len=16, as the paper presets do)")
    ndim = cfg.get("puzzle_emb_dim") or d
    return {
        "name": OFFICIAL_ARCH, "loss": {"name": "losses@ACTLossHead", "loss_type": loss_type},
        "halt_exploration_prob": halt_exploration_prob, "halt_max_steps": cfg["n_sup"],
        "H_cycles": cfg["T"], "L_cycles": cfg["n"], "H_layers": 0, "L_layers": cfg["n_layers"],
        "hidden_size": d, "num_heads": heads, "expansion": cfg["expansion"],
        "puzzle_emb_ndim": ndim, "pos_encodings": "learned" if learned else "rope" if rope else "none",
        "forward_dtype": forward_dtype, "mlp_t": cfg["mixer"] == "mlp_official",
        "puzzle_emb_len": prefix, "no_ACT_continue": not cfg.get("q_continue", False),
        "rope_theta": cfg.get("rope_base", 10000.0), "rms_norm_eps": 1e-5,
    }


def official_state_from(state: dict[str, torch.Tensor], arch: dict[str, Any], *,
                        compiled: bool = True) -> dict[str, torch.Tensor]:
    """Our ``trm`` state dict as the official ``ACTLossHead`` saves it (``_orig_mod.`` prefixed when
    ``compiled``). The init states take ``forward_dtype`` as in the official model; the Q-head
    always has two rows (an absent continue row is the official init: weight 0, bias -5)."""
    parsed = OfficialArch.model_validate(arch)
    names = official_names(parsed)
    dtype = getattr(torch, parsed.forward_dtype)
    out: dict[str, torch.Tensor] = {}
    d = parsed.hidden_size
    for theirs, ours in names.items():
        if ours.startswith("q_head."):
            continue
        if ours not in state:
            raise ConfigError(f"the model has no {ours!r}, which the official {theirs!r} needs")
        tensor = state[ours].detach().to(torch.float32)
        out[theirs] = tensor.to(dtype) if theirs in ("H_init", "L_init") else tensor
    weight = state.get("q_head.weight", torch.zeros(1, d))
    bias = state.get("q_head.bias", torch.full((1,), Q_INIT_BIAS))
    if weight.shape[0] == 1:
        weight = torch.cat((weight, torch.zeros(1, d)))
        bias = torch.cat((bias, torch.full((1,), Q_INIT_BIAS)))
    out["q_head.weight"], out["q_head.bias"] = weight.float().contiguous(), bias.float().contiguous()
    prefix = PREFIXES[0] if compiled else PREFIXES[1]
    return {prefix + k: v.contiguous() for k, v in out.items()}

