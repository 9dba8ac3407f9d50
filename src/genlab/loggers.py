"""Logger factories used as Hydra ``_target_``s where Lightning's own constructors need a decision first."""

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger
from rich.console import Console


def wandb_credentials_found() -> bool:
    """True when W&B could authenticate without asking: an API key in the environment or a ``wandb login`` entry
    in the netrc file for the configured host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and netrc.netrc(path).authenticators(host) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def wandb_logger(offline: bool | None = None, **kwargs) -> WandbLogger:
    """A ``WandbLogger`` that never prompts.

    ``offline=None`` (the default) means: online when a login is configured (or ``WANDB_MODE`` says what to do),
    offline otherwise, with a hint on how to upload the run later. Other kwargs go to ``WandbLogger``/``wandb.init``
    (project, entity, group, tags, name, save_dir, log_model, ...).
    """
    if offline is None:
        offline = "WANDB_MODE" not in os.environ and not wandb_credentials_found()
        if offline:
            Console(stderr=True).print(
                "[yellow]W&B:[/] no login found, logging offline. Upload later with "
                "[bold]wandb sync <run dir>/wandb/offline-run-*[/] (or run [bold]wandb login[/] first; "
                "logger=csv avoids W&B altogether)."
            )
    return WandbLogger(offline=offline, **kwargs)
