"""Logger factories used as Hydra ``_target_``s where Lightning's own constructors need a decision first."""

import logging
import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger

log = logging.getLogger(__name__)


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


def wandb_logger(offline: bool | None = None, settings: Mapping | None = None, **kwargs) -> WandbLogger:
    """A ``WandbLogger`` that never prompts.

    ``offline=None`` (the default) means: online when a login is configured (or ``WANDB_MODE`` says what to do),
    offline otherwise, with a hint on how to upload the run later. ``settings`` go to ``wandb.Settings``; by default
    ``quiet=True``: W&B still prints where the run is (its link online, its folder offline) and its warnings, but not
    the sparkline summary of every logged value at the end (genlab's own summary follows it). Other kwargs go to
    ``WandbLogger``/``wandb.init`` (project, entity, group, tags, name, save_dir, log_model, ...).
    """
    if offline is None:
        offline = "WANDB_MODE" not in os.environ and not wandb_credentials_found()
        if offline:
            log.info(
                "W&B: no login found, logging offline. Upload later with wandb sync <run dir>/wandb/offline-run-* "
                "(or run wandb login first; logger=csv avoids W&B altogether)."
            )
    logger = WandbLogger(offline=offline, settings={"quiet": True, **dict(settings or {})}, **kwargs)
    # Lightning always passes anonymous=None to wandb.init, a setting W&B 0.31 ignores but warns about on every run
    # ("The anonymous setting has no effect"); leave it out unless someone asked for anonymous logging.
    init_args = getattr(logger, "_wandb_init", None)
    if isinstance(init_args, dict) and init_args.get("anonymous") is None:
        init_args.pop("anonymous", None)
    return logger
