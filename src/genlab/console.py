"""What a run shows on the console, what its log file keeps, and where its run directory is.

Console: the config-group choices, the command-line overrides and the run directory (a few lines, never cut),
then Lightning's progress, one line per warning, and the end-of-run summary. Errors for bad input end the run with
one message instead of a traceback.

Log file (Hydra's ``<run dir>/<task>.log``, e.g. ``train.log``): all of that, plus the full resolved config, where
each warning came from, genlab's debug messages and the full traceback of any error, so that a failed run still
says on disk what happened.

``train.py`` and ``eval.py`` call :func:`register_resolvers` before ``@hydra.main`` and run their body inside
:func:`job`; the handlers and formatters are wired by ``conf/hydra/job_logging/genlab.yaml``.
"""

import linecache
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rich
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf
from rich.text import Text

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
# ``extra=FILE_ONLY`` on a log call: the record goes to the log file, not to the console.
FILE_ONLY = {"file_only": True}
# Loggers Lightning configures itself at import (a StreamHandler of their own, propagate=False) when the root logger
# has no handlers yet, which is always the case: it is imported before Hydra sets up logging.
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric")

# Third-party messages that tell a genlab user nothing they can act on. Matched by message, never by category or
# module, so that every other warning still shows.
NOISY_WARNINGS = (
    # Lightning 2.6 + torch >= 2.10 deprecation inside Lightning's own code (utilities/_pytree.py).
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # Datamodules serve a validation split for the likelihood callbacks; GANs have no validation_step, by design.
    r"You passed in a `val_dataloader` but have no `validation_step`",
)
NOISY_LOG_MESSAGES = (
    # Lightning advertising its hosted logger on every Trainer().
    r"💡 Tip: For seamless cloud logging",
)

# The order of the config-group choices in the summary; other groups follow.
CHOICE_ORDER = ("model", "data", "experiment", "debug", "trainer", "logger", "callbacks", "metrics")
# A run directory that is already taken gets ``-2``, ``-3``, ... appended.
MAX_DIR_SUFFIX = 10_000


# -- run directories -----------------------------------------------------------------------------------------------
def claim_dir(base: str) -> str:
    """Create and return ``base``, or ``base-2``, ``base-3``, ... if it is taken: the first name this call creates.

    Run directories are named by the second they start in (``outputs/runs/<date_time>_<model>_<data>``), so runs
    started together (a shell loop, a job array, a test) used to share one and overwrite each other's config,
    metrics and checkpoints. ``os.mkdir`` either creates the directory or fails because it exists, atomically (also
    on NFS), so of several processes asking for one name exactly one gets it and the others move on to the next
    suffix. A claim keeps the names readable and sortable, unlike a random or process-id suffix on every run.
    """
    parent = os.path.dirname(base)
    if parent:
        os.makedirs(parent, exist_ok=True)
    for number in range(1, MAX_DIR_SUFFIX):
        candidate = base if number == 1 else f"{base}-{number}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{base} and {MAX_DIR_SUFFIX - 2} numbered variants of it exist already; clean up {parent}.")


def register_resolvers() -> None:
    """``${unique_dir:PATH}`` for ``hydra.run.dir``/``hydra.sweep.dir`` (``conf/hydra/default.yaml``, ``eval.yaml``).

    ``use_cache``: the directory is claimed once per config, however often Hydra reads the key; Hydra copies the
    cache into each multirun job's config (as for ``${now:}``), so all jobs of a sweep share its one directory.
    """
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", claim_dir, use_cache=True)


# -- logging -------------------------------------------------------------------------------------------------------
class ConsoleHandler(logging.StreamHandler):
    """INFO to stdout, warnings and errors to stderr. The stream is looked up per message, not kept: Rich's live
    progress bar swaps ``sys.stdout``/``sys.stderr`` while it draws, and prints what is written there above it."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        super().emit(record)


class ConsoleFormatter(logging.Formatter):
    """The message alone; ``warning: ...``/``error: ...`` in front of those levels."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        return message


class FileFormatter(logging.Formatter):
    """Hydra's default line format; a warning also says which category and where it was raised."""

    def __init__(self, fmt: str = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s", **kwargs) -> None:
        super().__init__(fmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        origin = getattr(record, "warning_origin", None)
        return f"{text}  [{origin}]" if origin else text


class ConsoleFilter(logging.Filter):
    """Keeps records logged with ``extra=FILE_ONLY`` (the full config, tracebacks) off the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


class NoiseFilter(logging.Filter):
    """Drops the third-party log messages listed in :data:`NOISY_LOG_MESSAGES`, everywhere."""

    patterns = [re.compile(pattern) for pattern in NOISY_LOG_MESSAGES]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.search(message) for pattern in self.patterns)


_show_warning_default = warnings.showwarning


def log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` that logs (``py.warnings``, as ``logging.captureWarnings`` does) the message alone;
    the category and origin go to the log file only. Warnings meant for a given file are written there as before."""
    if file is not None:
        _show_warning_default(message, category, filename, lineno, file, line)
        return
    origin = f"{category.__name__} at {filename}:{lineno}"
    logging.getLogger("py.warnings").warning("%s", message, extra={"warning_origin": origin})


def setup_job_logging() -> None:
    """Route everything a run says through Python logging, i.e. into Hydra's job log file as well: Lightning's own
    messages, warnings, genlab's messages; and silence the not actionable noise of :data:`NOISY_WARNINGS`.
    Called at the start of each job, after Hydra has configured logging (idempotent)."""
    if HydraConfig.initialized() and logging.getLogger().handlers:  # Hydra set up the job's log: route into it
        for name in LIGHTNING_LOGGERS:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if type(handler) is logging.StreamHandler:  # the one Lightning added; not a user's FileHandler
                    logger.removeHandler(handler)
            logger.propagate = True
        warnings.showwarning = log_warning
    for pattern in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


# -- what a run prints ---------------------------------------------------------------------------------------------
def report(title: str, lines: list[str], style: str = "bold") -> None:
    """Print ``title`` (in ``style``) and ``lines`` as they are (no markup, never cut: soft wrap, so paths stay
    whole for copy and paste), and put the same text into the log file."""
    text = Text(title, style=style)
    for line in lines:
        text.append("\n" + line)
    rich.get_console().print(text, soft_wrap=True)
    log.info("%s", "\n".join([title, *lines]), extra=FILE_ONLY)


def job_summary() -> list[str]:
    """The group choices, the command-line overrides and the run directory of the current Hydra job."""
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if "/" not in k and k != "hydra" and v is not None}
    order = [k for k in CHOICE_ORDER if k in choices] + [k for k in choices if k not in CHOICE_ORDER]
    shown = " ".join(f"{k}={choices[k]}" for k in order)
    lines = [f"{hydra_cfg.job.name}  {shown}".rstrip()]
    if hydra_cfg.overrides.task:
        lines.append("  overrides      " + " ".join(hydra_cfg.overrides.task))
    output_dir = Path(hydra_cfg.runtime.output_dir)
    label = "run directory" if hydra_cfg.job.name == "train" else f"{hydra_cfg.job.name} directory"
    lines.append(f"  {label:<13}  {output_dir}")
    if hydra_cfg.output_subdir is not None:
        lines.append(f"  config         {output_dir / hydra_cfg.output_subdir / 'config.yaml'}  (print_config=full prints it resolved)")
    return lines


def resolved_yaml(cfg: DictConfig) -> str:
    try:
        return OmegaConf.to_yaml(cfg, resolve=True)
    except Exception as err:  # an interpolation that cannot resolve: the run is about to fail and say why
        return f"# not resolvable ({err}); as composed:\n{OmegaConf.to_yaml(cfg)}"


def show_config(cfg: DictConfig, print_config: bool | str = True) -> None:
    """``print_config``: true (or ``short``) prints :func:`job_summary`, ``full`` adds the resolved config, false
    prints nothing. The log file always gets the summary and the full resolved config."""
    if print_config not in (True, False, "short", "full"):
        raise ValueError(f"print_config={print_config}: choose true (the short summary), full (the resolved config too) or false.")
    lines = job_summary() if HydraConfig.initialized() else []
    text = resolved_yaml(cfg)
    if print_config and lines:
        report(lines[0], lines[1:])
    elif lines:
        log.info("%s", "\n".join(lines), extra=FILE_ONLY)
    if print_config == "full":
        rich.get_console().print(text, soft_wrap=True, markup=False, highlight=False)
    log.info("resolved config:\n%s", text, extra=FILE_ONLY)


# -- errors --------------------------------------------------------------------------------------------------------
class BadInputError(CompactHydraException):
    """A bad-input error that Hydra prints as its message alone (compact), with no traceback."""


def raised_by_genlab(err: BaseException) -> bool:
    """True when ``err`` comes from a ``raise`` statement in genlab's code: a message we wrote for the user. An error
    that Python or a library raised (a bug, an I/O failure) keeps its traceback."""
    tb = err.__traceback__
    if tb is None or isinstance(err, (NotImplementedError, AssertionError)) or not str(err).strip():
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = Path(tb.tb_frame.f_code.co_filename).resolve()
    if PACKAGE_DIR not in filename.parents:
        return False
    return linecache.getline(str(filename), tb.tb_lineno).lstrip().startswith("raise")


def error_text(err: BaseException) -> str:
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def bad_input_message(err: BaseException) -> str | None:
    """The one message to print for a bad-input error, or None for an error whose traceback should show."""
    if isinstance(err, InstantiationException):  # Hydra prints these compact anyway; ours read better unquoted
        cause = err.__cause__
        if cause is not None and raised_by_genlab(cause):
            key = re.search(r"^full_key: (.+)$", str(err), re.MULTILINE)
            return error_text(cause) + (f"\n  (while building {key.group(1)})" if key else "")
        return str(err)
    return error_text(err) if raised_by_genlab(err) else None


@contextmanager
def job() -> Iterator[None]:
    """The body of a Hydra task (``train.py``, ``eval.py``): sets up logging (:func:`setup_job_logging`) and reports
    errors. Every error's traceback goes to the log file. A bad-input error (:func:`bad_input_message`) then ends the
    run with its message alone; other errors propagate and Hydra prints them with their traceback. With
    ``HYDRA_FULL_ERROR=1`` every error propagates unchanged (full traceback on the console)."""
    setup_job_logging()
    try:
        yield
    except Exception as err:
        log_file = None
        if HydraConfig.initialized():
            hydra_cfg = HydraConfig.get()
            log_file = Path(hydra_cfg.runtime.output_dir) / f"{hydra_cfg.job.name}.log"
        log.error("failed: %s", error_text(err), exc_info=err, extra=FILE_ONLY)
        message = bad_input_message(err)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        hint = f"\n(traceback in {log_file})" if log_file is not None and log_file.is_file() else ""
        raise BadInputError(message + hint) from err
