"""Built-in architectures, registered exactly as a third-party plugin would register its own."""

from agent_forge import hookimpl
from agent_forge.models.transformer import TransformerConfig, build_transformer
from agent_forge.models.trm import TRMConfig, build_trm


@hookimpl
def forge_register_architectures(register):
    register("trm", build_trm, config=TRMConfig,
             description="Tiny Recursive Model: one shared net refining answer y and latent z")
    register("transformer", build_transformer, config=TransformerConfig,
             description="Non-recursive baseline: n_layers blocks applied once")
