"""Logger factories used as Hydra ``_target_``s where Lightning's own constructors need a decision first."""

import csv
import logging
import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

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


class ContinuedExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer for a resumed run: it keeps the rows the run's ``metrics.csv`` already holds (Lightning
    deletes the file) up to the first step the resumed run logs; rows from that step on, written after the checkpoint
    by the run that was stopped, are replaced by the resumed run's."""

    def _check_log_dir_exists(self) -> None:
        self.earlier_rows: list[dict[str, str]] = []
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                reader = csv.DictReader(file)
                self.earlier_rows = list(reader)
                self.metrics_keys = sorted(reader.fieldnames or [])

    def save(self) -> None:
        if self.earlier_rows and self.metrics:
            first_step = min(int(row["step"]) for row in self.metrics)
            kept = [row for row in self.earlier_rows if row.get("step") and int(row["step"]) < first_step]
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
            self.earlier_rows = []
        super().save()


class GenlabCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger``; with ``resume=True`` (set by :func:`genlab.run.continue_run` when a run is
    resumed into its own directory) the earlier part of the run's ``metrics.csv`` is kept instead of deleted."""

    def __init__(self, *args, resume: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.resume = resume

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            writer = ContinuedExperimentWriter if self.resume else ExperimentWriter
            self._experiment = writer(log_dir=self.log_dir)
        return self._experiment
