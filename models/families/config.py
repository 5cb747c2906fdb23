"""Model configuration: what belongs to a model, frozen, serialised with its weights.

A configuration holds everything needed to rebuild a model from its file alone: the family,
the preset (frame geometry), stems, channels, mask kind and the family's own sizes. What belongs
to a run (device, buffer size, gains, post-filter on or off) is not here.

Invalid values fail at construction with one sentence (``ConfigError``), so that a bad command
line or a bad config file is refused before any tensor is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ...realtime.dsp.presets import PRESETS, SpectralPreset, get_preset
from ...realtime.errors import UserError
from ...realtime.runtime.model_metadata import MAGNITUDE, MASK_DOMAINS

MASK_KINDS = ("sigmoid", "softmax", "ratio")
DEFAULT_STEMS = ("vocals", "drums", "bass", "other")


class ConfigError(UserError, ValueError):
    """A model configuration that cannot be built; the message is one sentence."""


@dataclass(frozen=True)
class SeparatorConfig:
    """What every family shares.

    Attributes:
        preset: name of the spectral preset (``studio``, ``live``, ``ultra``).
        stems: names of the stems the model separates, in output order.
        n_channels: audio channels (2: stereo).
        mask: ``sigmoid`` (each stem on its own), ``softmax`` or ``ratio`` (normalised across
            stems, so that the stems sum to the mix).
        mask_domain: ``magnitude`` (real masks from the magnitudes) or ``complex`` (complex
            masks from the spectrum's real and imaginary parts: they can correct phase; see
            ``layers/masks.py``, ``activate_complex_masks``).
    """

    family: ClassVar[str] = ""
    # False for an offline family (e.g. a bidirectional baseline): it cannot run frame by frame,
    # so it is never exported for the real-time engine.
    streamable: ClassVar[bool] = True

    preset: str = "live"
    stems: tuple[str, ...] = DEFAULT_STEMS
    n_channels: int = 2
    mask: str = "softmax"
    mask_domain: str = MAGNITUDE

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(
                f"Unknown preset {self.preset!r}: choose one of {', '.join(PRESETS)}."
            )
        if not self.stems or len(set(self.stems)) != len(self.stems):
            raise ConfigError(f"Stems must be one or more distinct names, got {list(self.stems)}.")
        if self.n_channels not in (1, 2):
            raise ConfigError(f"n_channels must be 1 or 2, got {self.n_channels}.")
        if self.mask not in MASK_KINDS:
            raise ConfigError(f"Unknown mask {self.mask!r}: choose one of {', '.join(MASK_KINDS)}.")
        if self.mask != "sigmoid" and len(self.stems) < 2:
            raise ConfigError(f"A {self.mask} mask normalises across stems and needs at least two.")
        if self.mask_domain not in MASK_DOMAINS:
            raise ConfigError(
                f"Unknown mask_domain {self.mask_domain!r}: choose one of "
                f"{', '.join(MASK_DOMAINS)}."
            )

    @property
    def spectral_preset(self) -> SpectralPreset:
        return get_preset(self.preset)

    @property
    def n_mask_parts(self) -> int:
        """Numbers per mask value: 1 (magnitude) or 2 (real and imaginary)."""
        return 1 if self.mask_domain == MAGNITUDE else 2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the family's name and every field."""
        fields = dataclasses.asdict(self)
        fields["stems"] = list(self.stems)
        return {"family": self.family, **fields}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SeparatorConfig:
        """The inverse of ``to_dict``; unknown or missing fields are refused, not guessed."""
        values = dict(values)
        family = values.pop("family", cls.family)
        if family != cls.family:
            raise ConfigError(f"A {family!r} configuration cannot build a {cls.family!r} model.")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"The {cls.family} configuration has unknown fields {unknown} "
                "(written by a newer livestems?)."
            )
        if "stems" in values:
            values["stems"] = tuple(values["stems"])
        return cls(**values)
