"""The optimizer the trainer steps: AdamW or AdamATan2, plus sign-SGD for a model's sparse embeddings.

The dense optimizer (``trainer.optimizer``) trains every parameter: ``adamw`` (torch's AdamW) or
``adam_atan2`` (:class:`AdamATan2`, the official TRM code's). Weight decay applies to matrices
only (not to biases, gains or the step scales), or with ``trainer.decay_all`` to every parameter,
as the official code decays. A model may declare parameters that are *sparse embeddings* — tables of which a
batch reads a few rows, such as the TRM's puzzle table with ``model.puzzle_emb_sparse`` — by
``model.sparse_embedding_parameters() -> {name: parameter}``. Those are left out of AdamW and
trained as the official TRM code trains its puzzle table: on the rows the batch used (their
gradient is non-zero), a sign-SGD step with decoupled weight decay,

    w <- w * (1 - lr * wd) - lr * sign(grad)

at ``trainer.puzzle_emb_lr`` and ``trainer.puzzle_emb_weight_decay``, following the same lr
schedule as the rest (:func:`set_lr`). Sign-SGD keeps no state, so a checkpoint of the
combined optimizer is AdamW's state alone and resume stays exact. The gradient clip leaves
sparse embeddings out (:func:`clipped_parameters`): a sign step does not depend on the scale.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from adam_atan2_pytorch import AdamAtan2
from torch import nn

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


class AdamATan2(AdamAtan2):
    """The official TRM code's optimizer (the ``adam-atan2`` CUDA package), on the pure-torch
    ``adam-atan2-pytorch`` package, with the official update exactly. Per parameter, at step t::

        p <- p * (1 - lr * wd) - lr / (1 - beta1^t) * atan2(m, sqrt(v / (1 - beta2^t)))

    with ``m``, ``v`` Adam's moments: no eps, decoupled weight decay. ``adam-atan2-pytorch``
    computes ``p * (1 - lr * wd) - lr * a * atan2(m / (1 - beta1^t), b * sqrt(v / (1 - beta2^t)))``:
    its defaults (``a = 1.27``, ``b = 1``) scale every step by 1.27, and even at ``a = b = 1`` the
    first bias correction sits inside the atan2, which differs from the official update while
    ``1 - beta1^t`` is far from 1 (at t = 1, pi/4 against 10 * atan(0.1) = 0.997 for a first
    gradient). As ``atan2(y / c, x / c) = atan2(y, x)`` for ``c > 0``, ``a = b = 1 / (1 - beta1^t)``
    gives the official update; ``t`` is each parameter's own step count (the package's
    ``state["steps"]``), so :meth:`step` steps the parameters in sub-groups of equal ``t``.
    """

    def __init__(self, params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.95),
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay, a=1.0, b=1.0)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        groups = self.param_groups
        stepped: list[dict[str, Any]] = []
        for group in groups:
            beta1 = group["betas"][0]
            by_step: dict[int, list[nn.Parameter]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_step.setdefault(int(self.state[p].get("steps", 0)) + 1, []).append(p)
            for t, params in by_step.items():
                scale = 1.0 / (1.0 - beta1 ** t)
                stepped.append({**group, "params": params, "a": scale, "b": scale})
        # The package reads a and b from the groups it iterates; the real groups (and with them
        # the checkpointed state_dict layout) are put back at once.
        self.param_groups = stepped
        try:
            return super().step(closure)
        finally:
            self.param_groups = groups


class SignSGD(torch.optim.Optimizer):
    """Row-sparse sign-SGD with decoupled weight decay, for embedding tables ``(rows, ...)``.

    Only rows whose gradient is non-zero (the ids in the batch) change; the others keep their
    value and are not decayed. Stateless. Each group carries its own ``base_lr``, the peak of
    the schedule :func:`set_lr` applies.
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "base_lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.reshape(p.shape[0], -1)
                rows = grad.ne(0).any(dim=1).nonzero().squeeze(1)
                if rows.numel() == 0:
                    continue
                w = p.index_select(0, rows)
                w.mul_(1 - lr * wd).add_(p.grad.index_select(0, rows).sign(), alpha=-lr)
                p.index_copy_(0, rows, w)


class CombinedOptimizer:
    """The dense optimizer (AdamW or AdamATan2, attribute ``adamw`` either way) and sign-SGD
    stepped as one optimizer (what ``TrainState.optimizer`` holds).

    ``param_groups`` lists the dense groups first (the logged ``lr`` is the first group's).
    ``state_dict`` is the dense optimizer's: sign-SGD has no state, and its lr is set from the
    config at every step.
    """

    def __init__(self, adamw: torch.optim.Optimizer, sparse: SignSGD) -> None:
        self.adamw, self.sparse = adamw, sparse

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [*self.adamw.param_groups, *self.sparse.param_groups]

    @property
    def state(self) -> Any:
        return self.adamw.state

    def sparse_parameters(self) -> list[nn.Parameter]:
        return [p for group in self.sparse.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.adamw.zero_grad(set_to_none=set_to_none)
        self.sparse.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.adamw.step()
        self.sparse.step()

    def state_dict(self) -> dict[str, Any]:
        return self.adamw.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.adamw.load_state_dict(state)


def sparse_embeddings(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters ``model`` declares as sparse embeddings (none for most models)."""
    declare = getattr(model, "sparse_embedding_parameters", None)
    return dict(declare()) if declare is not None else {}


def check_shardable(model: nn.Module) -> None:
    """Refuse FSDP for a model with sparse embeddings (call it before sharding)."""
    sparse = sparse_embeddings(model)
    if sparse:
        raise ConfigError(f"the model trains {', '.join(sparse)} as a sparse embedding (sign-SGD,"
                          " model.puzzle_emb_sparse=true), which trainer.parallel=fsdp does not support;"
                          " use trainer.parallel=ddp, or set model.puzzle_emb_sparse=false")


def build_optimizer(model: nn.Module, cfg: DeepSupervisionConfig) -> Any:
    """The dense optimizer over the model's parameters, or :class:`CombinedOptimizer` when it
    declares sparse embeddings. Call it after sharding, so the optimizer holds (and sizes its
    moments by) the shards. Two groups, decayed and not (empty with ``decay_all``), whatever the
    options, so a checkpoint's layout does not depend on them."""
    if cfg.optimizer == "muon":
        return build_muon(model, cfg)
    sparse = sparse_embeddings(model)
    skip = {id(p) for p in sparse.values()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if id(p) in skip:
            continue
        (decay if cfg.decay_all or not (p.dim() < 2 or "scales" in name) else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    adamw: Any = (AdamATan2(groups, lr=cfg.lr, betas=cfg.betas) if cfg.optimizer == "adam_atan2"
                  else torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas))
    if not sparse:
        return adamw
    return CombinedOptimizer(adamw, SignSGD(sparse.values(), lr=cfg.puzzle_emb_lr,
                                            weight_decay=cfg.puzzle_emb_weight_decay))


def set_lr(optimizer: Any, cfg: DeepSupervisionConfig, factor: float) -> None:
    """Every group at ``factor`` (the schedule's) times its peak: ``trainer.lr``, or a sign-SGD
    group's own ``base_lr``."""
    for group in optimizer.param_groups:
        group["lr"] = group.get("base_lr", cfg.lr) * factor


def clipped_parameters(model: nn.Module, optimizer: Any) -> list[nn.Parameter]:
    """The parameters with a gradient whose norm is measured and clipped: all but sparse embeddings."""
    sparse = getattr(optimizer, "sparse_parameters", None)
    skip = {id(p) for p in sparse()} if sparse is not None else set()
    return [p for p in model.parameters() if p.grad is not None and id(p) not in skip]


# -- trainer.optimizer=muon ------------------------------------------------------------------
#: Modules whose weights stay with AdamW although they are matrices: the output heads (an
#: embedding is not an ``nn.Linear`` and stays with AdamW anyway). nanochat's split.
HEAD_MODULES = ("head", "q_head", "lm_head")


def muon_split(model: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """``(muon, adamw)`` by name: Muon takes the 2-D weights of the ``nn.Linear`` layers inside the
    network (attention and MLP matrices); AdamW takes the rest: embeddings, output heads, norms,
    biases, initial states and scales. Muon orthogonalises a matrix's update, which means nothing
    for a vector and, for a table read a few rows at a time, would mix rows the batch never used."""
    muon: dict[str, nn.Parameter] = {}
    adamw: dict[str, nn.Parameter] = {}
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            name = f"{mod_name}.{p_name}" if mod_name else p_name
            hidden_matrix = (isinstance(module, nn.Linear) and p.dim() == 2
                             and mod_name.rsplit(".", 1)[-1] not in HEAD_MODULES)
            (muon if hidden_matrix else adamw)[name] = p
    return muon, adamw


class MuonAdamW:
    """``torch.optim.Muon`` and ``torch.optim.AdamW`` stepped as one optimizer. Muon runs at
    ``trainer.lr`` with ``adjust_lr_fn='match_rms_adamw'`` (its update scaled to AdamW's RMS, so one
    learning rate serves both) and ``trainer.weight_decay``; AdamW decays nothing it holds (norms,
    biases, embeddings, heads). ``param_groups`` lists Muon's first."""

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer) -> None:
        self.muon, self.adamw = muon, adamw

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    @property
    def state(self) -> Any:
        return {**self.muon.state, **self.adamw.state}

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"muon", "adamw"}:
            raise ConfigError("trainer.optimizer=muon but the checkpoint's optimizer state is not Muon+AdamW's;"
                              " resume with the optimizer it was trained with")
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


def build_muon(model: nn.Module, cfg: DeepSupervisionConfig) -> MuonAdamW:
    """:class:`MuonAdamW` over :func:`muon_split`'s two sets."""
    if sparse_embeddings(model):
        raise ConfigError("trainer.optimizer=muon does not train sparse puzzle embeddings"
                          " (model.puzzle_emb_sparse=true); set trainer.optimizer=adamw or puzzle_emb_sparse=false")
    muon, adamw = muon_split(model)
    if not muon:
        raise ConfigError(f"trainer.optimizer=muon: {type(model).__name__} has no hidden weight matrices for Muon;"
                          " use trainer.optimizer=adamw")
    return MuonAdamW(torch.optim.Muon(list(muon.values()), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                      adjust_lr_fn="match_rms_adamw"),
                     torch.optim.AdamW(list(adamw.values()), lr=cfg.lr, betas=cfg.betas, weight_decay=0.0))
