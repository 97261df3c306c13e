"""How a model's work and state are split across ranks: DDP (replicated) or FSDP2 (sharded).

The trainer picks one with ``trainer.parallel`` (docs/distributed.md):

* ``ddp``: every rank holds the whole model, optimizer and EMA; ``DistributedDataParallel``
  averages the gradients. Fastest while everything fits in one device's memory.
* ``fsdp``: ``torch.distributed.fsdp.fully_shard`` (FSDP2). Parameters, gradients, optimizer
  moments and the EMA are sharded along their first dimension, so each rank keeps ``1/K`` of
  them; a unit's full parameters exist only while it runs. The units are the children of the
  model's outermost ``nn.ModuleList`` s (its layers; see :func:`fsdp_units`), then the root.

Everything outside the model code that reads or writes weights goes through the helpers here,
so one code path serves a single process, DDP and FSDP: :func:`full_state_dict` (what a file
holds), :func:`load_full_state_dict`, :func:`optimizer_state_dict`,
:func:`load_optimizer_state_dict`, :func:`full_tensor` and :func:`shard_like`. Under FSDP they
are collectives: every rank must call them, in the same order.

Buffers are not sharded and, unlike DDP, FSDP does not broadcast them: a model whose forward
changes its buffers must keep them equal across ranks itself (the ``memory`` callback does).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from torch import nn

from agent_forge import distributed as dist
from agent_forge.errors import ConfigError

Parallel = Literal["ddp", "fsdp"]


def is_sharded(model: nn.Module) -> bool:
    """True for a module that ``fully_shard`` has sharded (its parameters are DTensors)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2 has no sharded modules
        return False
    return isinstance(model, FSDPModule)


def fsdp_units(model: nn.Module) -> list[nn.Module]:
    """The submodules sharded as their own unit: those named by ``model.fsdp_units()`` if the
    model defines it, else the children of every outermost ``nn.ModuleList`` (a model's layers).

    A unit's parameters are gathered when the unit runs and freed after it, so a unit must own
    parameters that no code outside its ``forward`` reads. Layers called several times in one
    forward (the TRM's shared blocks) are fine: each call gathers them again.
    """
    custom = getattr(model, "fsdp_units", None)
    if callable(custom):
        return list(custom())
    units: list[nn.Module] = []
    taken: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and not any(name.startswith(t + ".") for t in taken):
            units.extend(module)
            taken.append(name)
    return units


def shard(model: nn.Module, device: torch.device) -> nn.Module:
    """Shard ``model`` in place over all ranks with FSDP2 and return it.

    Rank 0's parameters and buffers are first broadcast to every rank, so all ranks shard the
    same initial weights even if a model's initialisation is not seeded identically.
    """
    from torch.distributed.fsdp import fully_shard

    # FSDP warns when a module returns a view, because an in-place op on it would skip its
    # backward hook. The trainer never changes a model's outputs in place (merge_carry and the
    # losses build new tensors), and TRM's outputs (the detached carry, the squeezed Q logit)
    # are views by nature, so the warning would only be noise on every run.
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
    scalars = [name for name, p in model.named_parameters() if p.dim() == 0]
    if scalars:
        raise ConfigError(f"trainer.parallel=fsdp cannot shard 0-d parameters ({', '.join(scalars[:5])}): give them"
                          " one dimension in the model (torch.zeros(1), not torch.zeros(())), or use"
                          " trainer.parallel=ddp")
    model.to(device)
    broadcast_from_main(model)
    for unit in fsdp_units(model):
        fully_shard(unit)
    fully_shard(model)
    return model


def reshard(model: nn.Module) -> None:
    """Put every FSDP unit of ``model`` back to its sharded parameters (no-op if not sharded).

    FSDP keeps the root unit's parameters gathered after a forward, expecting the backward
    that training runs next. After a forward without backward (evaluation) the module's
    parameters are therefore plain full tensors, not the shards the optimizer and EMA hold;
    code that reads or writes parameters by name calls this first.
    """
    if not is_sharded(model):
        return
    for module in model.modules():
        if is_sharded(module):
            module.reshard()


def broadcast_from_main(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's ``model`` (unsharded modules)."""
    if not dist.active():
        return
    import torch.distributed as tdist

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tdist.broadcast(tensor.data, src=0)


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor on every rank: gathers a DTensor's shards, returns a plain tensor as is."""
    gather = getattr(t, "full_tensor", None)
    return gather() if callable(gather) else t


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` laid out like ``like``: this rank's shard if ``like`` is a DTensor, else a copy
    on ``like``'s device and dtype. Every rank must pass the same ``full``."""
    mesh = getattr(like, "device_mesh", None)
    if mesh is None:
        return full.to(device=like.device, dtype=like.dtype).clone()
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(device=like.device, dtype=like.dtype), mesh, like.placements)


def _full_options() -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # cpu_offload: gather one tensor at a time into rank 0's host memory, never the whole model
    # on every device.
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's complete state dict as CPU copies (safe to keep after the weights change).

    Under FSDP only rank 0 receives the tensors (the others get ``{}``): only it writes files.
    """
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        reshard(model)
        return get_model_state_dict(model, options=_full_options())
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def load_full_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a complete state dict (as :func:`full_state_dict` wrote it) into ``model``."""
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
        return
    model.load_state_dict(state)


def optimizer_state_dict(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's complete state (moments gathered under FSDP, on rank 0 only)."""
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer, options=_full_options())
    return optimizer.state_dict()


def load_optimizer_state_dict(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
        return
    optimizer.load_state_dict(state)
