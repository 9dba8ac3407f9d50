"""Where Hydra looks for plugins: the genlab Optuna sweeper (``hydra/sweeper=optuna``), defined in genlab.sweeps."""

from genlab.sweeps import OptunaSweeper as _OptunaSweeper


class OptunaSweeper(_OptunaSweeper):
    """:class:`genlab.sweeps.OptunaSweeper`, under the module name Hydra accepts for a plugin."""
