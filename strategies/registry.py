"""The strategies by name, and their parameters from TOML tables and command-line flags.

Strategies of packages above this one (the ML predictor maker in ``ml``) register themselves through the
``proptrade.strategies`` entry-point group (pyproject.toml): each entry point names a function that calls
:func:`register_strategy`. They are loaded on first use, so ``strategies`` never imports them; a strategy may
declare options that are not numbers (``--model PATH``), passed to its factory by name.

Each maker's parameters are a frozen dataclass (``MakerParams`` and its subclasses): a field's default is the
documented default, and ``proptrade strategy list`` prints them all. Values come, later ones winning, from the
dataclass defaults, a TOML table (``[strategy]`` with ``name = ...`` and the fields), then flags. A field
``quote_interval_s`` is the flag ``--quote-interval`` (a trailing ``_s`` means seconds and is dropped from the
flag; underscores become dashes). A parameter that the chosen strategy does not have is an error, never
ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from c_engine.commandfile import ConfigFileError, read_toml

from .makers import (
    AdaptiveParams,
    AdaptiveSpreadMaker,
    AvellanedaStoikovMaker,
    AvellanedaStoikovParams,
    GlftMaker,
    GlftParams,
    InventorySkewMaker,
    InventorySkewParams,
    MakerParams,
    QuotingStrategy,
    SymmetricMaker,
)

__all__ = [
    "OPTIONS",
    "STRATEGIES",
    "StrategyError",
    "build_strategy",
    "flag_name",
    "load_plugins",
    "needs_plugins",
    "option_flags",
    "options_of",
    "parameter_values",
    "parameter_fields",
    "register_strategy",
    "strategy_module",
    "strategy_params",
]

#: name -> (strategy class, its parameters class)
STRATEGIES: dict[str, tuple[type[QuotingStrategy], type[MakerParams]]] = {
    "symmetric": (SymmetricMaker, MakerParams),
    "inventory_skew": (InventorySkewMaker, InventorySkewParams),
    "adaptive": (AdaptiveSpreadMaker, AdaptiveParams),
    "avellaneda": (AvellanedaStoikovMaker, AvellanedaStoikovParams),
    "glft": (GlftMaker, GlftParams),
}


#: name -> {option: help} of a registered strategy's non-numeric options (paths), given to its factory by name
OPTIONS: dict[str, dict[str, str]] = {}
_FACTORIES: dict[str, Callable[..., QuotingStrategy]] = {}
_PLUGINS_LOADED = False


class StrategyError(ValueError):
    """An unknown strategy, or a parameter it does not have or cannot take."""


def register_strategy(
    name: str,
    factory: Callable[..., QuotingStrategy],
    params_class: type[MakerParams],
    options: Mapping[str, str] | None = None,
) -> None:
    """Adds a strategy: ``factory(params, **options)`` builds it (options: name -> help, e.g. a model path)."""
    if name in STRATEGIES and _FACTORIES.get(name) is not factory:
        raise StrategyError(f"a strategy named {name!r} is registered already")
    STRATEGIES[name] = (QuotingStrategy, params_class)
    _FACTORIES[name] = factory
    OPTIONS[name] = dict(options or {})


def strategy_module(name: str) -> str:
    """The module that defines the strategy (its docstring describes it)."""
    factory = _FACTORIES.get(name)
    return factory.__module__ if factory is not None else STRATEGIES[name][0].__module__


def load_plugins() -> None:
    """Registers the strategies of the ``proptrade.strategies`` entry points (once)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for entry in entry_points(group="proptrade.strategies"):
        entry.load()()


def flag_name(field: str) -> str:
    """``quote_interval_s`` -> ``quote-interval``."""
    return field.removesuffix("_s").replace("_", "-")


def parameter_fields(name: str) -> list[dataclasses.Field[Any]]:
    """The strategy's parameter fields (the symbol left out)."""
    return [f for f in dataclasses.fields(_params_class(name)) if f.name != "symbol"]


def _params_class(name: str) -> type[MakerParams]:
    if name not in STRATEGIES:
        load_plugins()  # perhaps another package's
    try:
        return STRATEGIES[name][1]
    except KeyError:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None


def strategy_params(name: str, symbol: str, values: Mapping[str, Any]) -> MakerParams:
    """The parameters of strategy ``name`` on ``symbol``: defaults, overridden by ``values`` (field names)."""
    cls = _params_class(name)
    known = {f.name: f for f in parameter_fields(name)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        field = known.get(key)
        if field is None:
            raise StrategyError(f"strategy {name!r} has no parameter {key!r}; it has {', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StrategyError(f"parameter {key!r} must be a number, not {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond a double
            raise StrategyError(f"parameter {key!r} is out of range ({value!r})") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise StrategyError(f"parameter {key!r} must be finite, not {value!r}")
        if number < 0:
            raise StrategyError(f"parameter {key!r} cannot be negative ({value!r})")
        kwargs[key] = number
    params = cls(symbol=symbol, **kwargs)
    if params.size <= 0 or params.max_position <= 0:
        raise StrategyError("size and max_position must be positive")
    return params


def build_strategy(
    name: str, symbol: str, values: Mapping[str, Any] | None = None, options: Mapping[str, str | None] | None = None
) -> QuotingStrategy:
    """A strategy by name with its parameters (see :func:`strategy_params`) and, for a registered one, its
    options (``None`` values left out)."""
    params = strategy_params(name, symbol, values or {})
    given = {k: v for k, v in (options or {}).items() if v is not None}
    factory = _FACTORIES.get(name)
    if factory is not None:
        unknown = set(given) - set(OPTIONS[name])
        if unknown:
            raise StrategyError(f"strategy {name!r} has no option {sorted(unknown)}")
        return factory(params, **given)
    if given:
        raise StrategyError(f"strategy {name!r} takes no option {sorted(given)}")
    strategy_class = STRATEGIES[name][0]
    return strategy_class(params)


# --- for the command lines ---------------------------------------------------------------------------------


def needs_plugins(argv: list[str]) -> bool:
    """Whether the command names a strategy of another package (or lists or helps): only then are plugins
    imported, which costs seconds (model runtimes), so a built-in maker starts fast."""
    if any(a in ("-h", "--help", "list") for a in argv):
        return True
    for i, arg in enumerate(argv):
        name = arg.partition("=")[2] if arg.startswith("--strategy=") else None
        if arg == "--strategy" and i + 1 < len(argv):
            name = argv[i + 1]
        if name is not None:
            return name not in STRATEGIES
    return False


def option_flags() -> dict[str, str]:
    """option -> help, over every registered strategy's non-numeric options (a model path...)."""
    flags: dict[str, str] = {}
    for name, options in OPTIONS.items():
        for option, text in options.items():
            flags.setdefault(option, f"{text} ({name})")
    return flags


def options_of(args: argparse.Namespace) -> dict[str, str]:
    """The strategy options given on a command line (the ``opt_*`` destinations ``option_flags`` declared)."""
    return {k.removeprefix("opt_"): v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}


def parameter_values(args: argparse.Namespace) -> dict[str, Any]:
    """A command line's strategy parameters: its ``--config`` file's ``[strategy]`` table, then its flags
    (``param_*`` destinations), the flags winning."""
    values: dict[str, Any] = {}
    if args.config:
        try:  # one line naming the file and line, for bytes that are not UTF-8 or TOML tomllib cannot read too
            table = read_toml(args.config).get("strategy", {})
        except ConfigFileError as e:
            raise StrategyError(str(e)) from None
        if not isinstance(table, dict):
            raise StrategyError(f"{args.config}: [strategy] must be a table")
        for key, value in table.items():
            if type(value) is int and not -(2**53) <= value <= 2**53:  # no float holds it: no parameter takes it
                raise StrategyError(f"{args.config}: [strategy] {key}: an integer of {len(str(abs(value)))} digits, "
                                    "beyond any parameter's range")  # fmt: skip
        values.update({k: v for k, v in table.items() if k != "name"})
    for key, value in vars(args).items():
        if key.startswith("param_") and value is not None:
            values[key.removeprefix("param_")] = value
    return values
