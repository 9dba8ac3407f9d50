"""Config values checked against what their targets accept, before anything is built.

A command-line typo such as ``trainer.max_epochs=abc`` or ``model.n_critic=two`` otherwise surfaces deep inside
Lightning or a constructor (a bare ``AssertionError``, ``'<' not supported``). Every node with a ``_target_``
already says what it accepts, in the type hints of its target's signature, so the check is read from there instead
of a second schema that could drift: a value given for an ``int``, ``float``, ``bool`` or ``Literal[...]``
parameter (alone or in a union with ``None``) must be one; other annotations (paths, nets, classes) are the
target's to check. Sizes that must be positive and have no type to say so are listed in :data:`POSITIVE`.
"""

import inspect
import types
import typing
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

#: keys that must be positive integers whatever their target's annotation says ("1 or more")
POSITIVE = ("data.batch_size", "model.n_critic")
_SIMPLE = (int, float, bool, str, type(None))


def check_config_types(cfg: DictConfig) -> None:
    """Raise one ``ValueError`` listing every config value its target would reject by type, by full key, with the
    accepted type or values and the value given."""
    problems = [*_walk(cfg, "")]
    for key in POSITIVE:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        reported = any(problem.startswith(f"{key}=") for problem in problems)
        if value is not None and not reported and (not _is_int(value) or value < 1):
            problems.append(f"{key}={value!r}: expected a positive integer (1 or more)")
    if problems:
        raise ValueError(
            "config values of the wrong type:\n  " + "\n  ".join(problems) + "\nFix them on the command line "
            "(e.g. trainer.max_epochs=10) or in the config file that sets them."
        )


def _walk(node: Any, path: str):
    if isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")
        return
    if not isinstance(node, DictConfig):
        return
    hints = _hints(node.get("_target_")) if "_target_" in node else {}
    for key in node:
        full = f"{path}.{key}" if path else str(key)
        try:
            value = node[key]
        except Exception:  # an interpolation that does not resolve: instantiation names it itself
            continue
        if key in hints and not isinstance(value, (DictConfig, ListConfig)):
            expected = _accepted(hints[key])
            if expected is not None and not _matches(value, expected):
                yield f"{full}={value!r}: expected {_describe(expected)}"
        yield from _walk(value, full)


def _hints(target: Any) -> dict[str, Any]:
    try:
        obj = get_object(target) if isinstance(target, str) else target
        function = obj.__init__ if inspect.isclass(obj) else obj
        return typing.get_type_hints(function)
    except Exception:  # an unimportable target or unresolvable hints: instantiation reports the target itself
        return {}


def _accepted(annotation: Any) -> list | None:
    """The simple types and literal values an annotation allows, or ``None`` when it allows something this check
    cannot judge from a config value (a class, a callable, a path, a container)."""
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    accepted = []
    for member in members:
        if typing.get_origin(member) is typing.Literal:
            accepted += [("literal", v) for v in typing.get_args(member)]
        elif member in _SIMPLE:
            accepted.append(member)
        else:
            return None
    if str in accepted:  # Hydra reads `data.root=2024` as an int; a str parameter takes any scalar
        return None
    return accepted


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _matches(value: Any, accepted: list) -> bool:
    for kind in accepted:
        if isinstance(kind, tuple):
            if value == kind[1] and type(value) is type(kind[1]):
                return True
        elif kind is type(None):
            if value is None:
                return True
        elif kind is bool:
            if isinstance(value, bool):
                return True
        elif kind is int:
            if _is_int(value):
                return True
        elif kind is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True
    return False


def _describe(accepted: list) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    parts = [names[k] for k in accepted if not isinstance(k, tuple)]
    literals = [repr(k[1]) for k in accepted if isinstance(k, tuple)]
    if literals:
        parts.append(("one of " + ", ".join(literals)) if len(literals) > 1 else literals[0])
    return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]
