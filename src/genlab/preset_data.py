"""The data a preset trains on when the command line names none (``conf/preset_data.yaml``).

``python train.py model=cyclegan`` should train CycleGAN on its demo data, not fail on the default digits. Hydra
cannot express this inside the configs (a model preset may not override the data group listed after it, and an
interpolated group may not carry overrides), so ``train.py`` adds the choice to its command line before Hydra
composes it: one visible rule, printed in the run header like any override.
"""

from pathlib import Path

from omegaconf import OmegaConf

# groups whose configs choose the data themselves: adding data= would override theirs
CHOOSE_DATA = ("data", "experiment", "hparams_search")


def with_preset_data(argv: list[str], table: Path) -> list[str]:
    """``argv`` plus ``data=<the preset's data>`` when it names one model preset, listed in ``table``, and nothing
    that picks the data. Multirun lists (``model=a,b``) and ``+``/``~`` forms are left alone."""
    choices = {}
    for position, arg in enumerate(argv):
        key, sep, value = arg.partition("=")
        if sep:
            choices[key.lstrip("+~").removeprefix("/")] = (position, value)
    position, model = choices.get("model", (None, None))
    if not model or "," in model or any(group in choices for group in CHOOSE_DATA) or not table.is_file():
        return list(argv)
    data = OmegaConf.load(table).get(model)
    # next to model=, not at the end: Hydra's flags (--cfg job) must follow the overrides
    return [*argv[: position + 1], f"data={data}", *argv[position + 1 :]] if data else list(argv)
