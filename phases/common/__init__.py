"""Code that more than one phase uses: evaluation over a split and rebuilding a model from an
artifact. It lives outside every phase, so no phase imports another (docs/architecture.md)."""
