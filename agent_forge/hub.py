"""The Hugging Face Hub: push an export folder, and read an artifact by its Hub id.

Both go through ``huggingface_hub`` (its endpoint, token and cache settings apply: ``HF_ENDPOINT``,
``HF_TOKEN``, ``HF_HOME``, ``HF_HUB_OFFLINE``). A downloaded artifact is verified exactly as a
local one (manifest digests, weights size and sha256) before anything is built from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent_forge.errors import ArtifactError, ConfigError

#: ``owner/name``, as the Hub spells repository ids.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: What an artifact folder on the Hub holds (``forge export``'s layout); nothing else is fetched.
ARTIFACT_FILES = ("config.json", "model.safetensors", "README.md")


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError("the Hugging Face Hub needs the huggingface_hub package: pip install huggingface_hub"
                          ) from None
    return huggingface_hub


def _one_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def is_hub_id(text: str | Path) -> bool:
    """True when ``text`` reads as ``owner/name`` and names nothing on this machine."""
    text = str(text)
    return bool(HUB_ID.match(text)) and not Path(text).exists()


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Create ``repo_id`` (a model repository) if needed and upload ``folder`` in one commit;
    return the commit's URL."""
    if not HUB_ID.match(repo_id):
        raise ConfigError(f"--push-to-hub {repo_id!r}: not a Hub repository id; use OWNER/NAME")
    hub = _hub()
    api = hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                                 commit_message=f"agent-forge export of {Path(folder).name}")
    except (OSError, ValueError, hub.errors.HfHubHTTPError) as exc:
        raise ConfigError(f"--push-to-hub {repo_id}: the upload failed ({_one_line(exc)}); the export folder"
                          f" {folder} is complete, so retry the push or upload it yourself") from None
    return str(getattr(info, "commit_url", info))


def download_artifact(repo_id: str, *, revision: str | None = None) -> Path:
    """The export folder of Hub model ``repo_id``, downloaded (or refreshed) into
    ``$FORGE_CACHE_DIR/hub/OWNER--NAME``. Real files, not the Hub cache's symlinks into its blob
    store: an artifact's weights must lie inside its own folder (``verify_artifact``)."""
    from agent_forge.cache import cache_dir

    hub = _hub()
    target = cache_dir() / "hub" / repo_id.replace("/", "--")
    try:
        folder = hub.snapshot_download(repo_id, repo_type="model", revision=revision,
                                       allow_patterns=list(ARTIFACT_FILES), local_dir=str(target))
    except (OSError, ValueError, hub.errors.HfHubHTTPError, hub.errors.LocalEntryNotFoundError) as exc:
        raise ArtifactError(f"{repo_id}: not found locally, and the Hub did not give it ({_one_line(exc)});"
                            " pass a manifest path, or check the repository id and your network") from None
    return Path(folder)


def resolve_artifact(artifact: str | Path) -> Path:
    """``artifact`` itself, or, for a Hub id that names nothing local, its downloaded folder."""
    return download_artifact(str(artifact)) if is_hub_id(artifact) else Path(artifact)
