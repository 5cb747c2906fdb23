"""The model families, as plug-ins: the ``livestems.families`` entry-point group.

A family is a configuration class, a network builder and a front-end builder. Registering one
in a package's ``pyproject.toml`` (``[project.entry-points."livestems.families"]``) makes it
available to training, checkpoints and export without touching any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ..layers.front_end import FrontEnd
from ..layers.streaming import MaskNet
from .config import ConfigError, SeparatorConfig

ENTRY_POINT_GROUP = "livestems.families"


@dataclass(frozen=True)
class ModelFamily:
    name: str
    config_class: type[SeparatorConfig]
    build_net: Callable[[Any], MaskNet]
    build_front_end: Callable[[Any], FrontEnd]
    # Named sizes (field overrides), e.g. "small" for tests and quick runs; "default" is {}.
    sizes: dict[str, dict[str, Any]]

    def config(self, size: str = "default", **fields: Any) -> SeparatorConfig:
        """A configuration of a named size, with any field overridden."""
        if size not in self.sizes:
            raise ConfigError(
                f"Unknown size {size!r} for the {self.name} family: choose one of "
                f"{', '.join(self.sizes)}."
            )
        return self.config_class(**{**self.sizes[size], **fields})


def available_families() -> list[str]:
    return sorted(entry.name for entry in metadata.entry_points(group=ENTRY_POINT_GROUP))


def get_family(name: str) -> ModelFamily:
    """The family registered as ``name``; one sentence naming the known ones otherwise."""
    entries = {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none (is livestems installed?)"
        raise ConfigError(f"Unknown model family {name!r}: the known ones are {known}.")
    family = entries[name].load()
    if not isinstance(family, ModelFamily) or family.name != name:
        raise TypeError(f"entry point {entries[name].value} is not the ModelFamily {name!r}")
    return family


def config_from_dict(values: dict[str, Any]) -> SeparatorConfig:
    """Rebuild a configuration from ``SeparatorConfig.to_dict()`` output."""
    if "family" not in values:
        raise ConfigError("The model configuration does not say which family it belongs to.")
    return get_family(values["family"]).config_class.from_dict(values)
