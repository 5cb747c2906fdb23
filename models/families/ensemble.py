"""The ``ensemble`` family: several trained mask networks in one graph, their masks averaged.

Averaging the stems of separators whose errors differ is the usual last step of published
systems; ``models/evaluation/blend.py`` measures what it is worth on any models. When the
members share one front end (the same preset, channels and subbands) and one mask domain and
kind, the mean of their masks times the mixture's spectrum is exactly the mean of their stems
(masks act linearly on the one spectrum), so a blend needs no second processor path: it is one
network whose members each read the frame's features and keep their own state, exported as one
ONNX file like any other model. Its compute per hop is the members' sum.

An ensemble is built from trained checkpoints (``python -m livestems.models.families.ensemble
A.pt B.pt -o ensemble.pt``, then ``livestems export``), not trained as one: each member keeps the
weights its own run chose. Its configuration holds every member's configuration, so the file
alone rebuilds it. Members with a waveform branch (``hybrid``) are refused: their hops would need
averaging too, and no bundled model has one.

Each member's state tensors keep their names behind ``m<index>_`` (``m0_conv0_past``, ...).
With softmax or ratio masks the mean of masks that sum to one sums to one: the stems still add
up to the mix. The mean may be weighted (``--weights``: one weight per member, the same for
every stem, so that a weaker member counts less and the stems still add up to the mix; a
weight per stem would break that).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..layers.front_end import FrontEnd
from ..layers.streaming import MaskNet, StateSpec
from .config import ConfigError, SeparatorConfig
from .registry import ModelFamily, config_from_dict, get_family

if TYPE_CHECKING:  # separator.py imports the registry, which loads this module
    from .separator import SeparatorNet

#: What every member must share with the ensemble (and so with each other).
SHARED_FIELDS = ("preset", "stems", "n_channels", "mask", "mask_domain")


def _member_configs(config: EnsembleConfig) -> list[SeparatorConfig]:
    return [config_from_dict(dict(member)) for member in config.members]


def _front_end_key(front_end: FrontEnd) -> tuple[Any, ...]:
    """What must be equal for two front ends to give the same features."""
    return (
        type(front_end).__name__,
        front_end.n_feature_channels,
        front_end.n_bins,
        front_end.hop,
        int(front_end.latency_samples),
    )


@dataclass(frozen=True)
class EnsembleConfig(SeparatorConfig):
    """Attributes:
    members: each member's configuration, as ``SeparatorConfig.to_dict()`` gives it (two or
        more). The shared fields (preset, stems, channels, mask, mask domain) must equal the
        members'; ``ensemble_config`` fills them in. None given: two ``cws`` networks of the
        ``small`` size with the shared fields (what the benchmarks and the cost table build,
        with random weights, for the family's default).
    weights: how much each member's masks count in their mean, one per member (normalised to
        sum to one); none given: all alike.
    """

    family = "ensemble"

    members: tuple[dict[str, Any], ...] = ()
    weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.members:
            shared = {field: getattr(self, field) for field in SHARED_FIELDS}
            pair = get_family("cws").config("small", **shared).to_dict()
            object.__setattr__(self, "members", (pair, dict(pair)))
        if len(self.members) < 2:
            raise ConfigError("An ensemble needs two or more member models.")
        if self.weights:
            if len(self.weights) != len(self.members):
                raise ConfigError(
                    f"The ensemble has {len(self.members)} members and {len(self.weights)} "
                    "weights: give one weight per member."
                )
            if not all(math.isfinite(weight) and weight >= 0 for weight in self.weights):
                raise ConfigError(
                    f"The ensemble's weights {list(self.weights)} must be finite and not negative."
                )
            if sum(self.weights) <= 0:
                raise ConfigError("The ensemble's weights are all zero: one must be above 0.")
        members = _member_configs(self)
        for index, member in enumerate(members):
            if isinstance(member, EnsembleConfig):
                raise ConfigError(f"Member {index} is itself an ensemble: give its members.")
            if member.family == "hybrid":
                raise ConfigError(
                    f"Member {index} is a hybrid model, whose waveform branch an ensemble of "
                    "masks cannot average."
                )
            if not member.streamable:
                raise ConfigError(
                    f"Member {index} is a {member.family} model, an offline baseline that "
                    "cannot run frame by frame."
                )
            for field in SHARED_FIELDS:
                if getattr(member, field) != getattr(self, field):
                    raise ConfigError(
                        f"Member {index} has {field} {getattr(member, field)!r} where the "
                        f"ensemble has {getattr(self, field)!r}: members must share it."
                    )
        keys = {_front_end_key(get_family(m.family).build_front_end(m)) for m in members}
        if len(keys) > 1:
            raise ConfigError(
                "The members read different front ends (another STFT or number of subbands), "
                "so their masks cannot be averaged on one spectrum."
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SeparatorConfig:
        values = dict(values)
        if "members" in values:
            values["members"] = tuple(dict(member) for member in values["members"])
        if "weights" in values:
            values["weights"] = tuple(float(weight) for weight in values["weights"])
        return super().from_dict(values)


def ensemble_config(
    members: Sequence[SeparatorConfig], weights: Sequence[float] = ()
) -> EnsembleConfig:
    """The ensemble of these members (weighted by ``weights``, one per member; none given: all
    alike), its shared fields taken from the first."""
    if not members:
        raise ConfigError("An ensemble needs two or more member models.")
    first = members[0]
    return EnsembleConfig(
        preset=first.preset,
        stems=first.stems,
        n_channels=first.n_channels,
        mask=first.mask,
        mask_domain=first.mask_domain,
        members=tuple(member.to_dict() for member in members),
        weights=tuple(float(weight) for weight in weights),
    )


class EnsembleMaskNet(MaskNet):
    """The members' networks side by side; ``forward`` gives the (weighted) mean of their
    masks."""

    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__()
        self.config = config
        nets = [get_family(member.family).build_net(member) for member in _member_configs(config)]
        self.members = torch.nn.ModuleList(nets)
        self._n_states = [len(net.state_spec()) for net in nets]
        # Python floats, not a tensor: the export folds them into the graph as constants.
        weights = config.weights or (1.0,) * len(nets)
        self._shares = [weight / sum(weights) for weight in weights]
        self._specs = tuple(
            StateSpec(f"m{index}_{spec.name}", spec.shape, spec.batch_axis)
            for index, net in enumerate(nets)
            for spec in net.state_spec()
        )

    def state_spec(self) -> tuple[StateSpec, ...]:
        return self._specs

    def forward(self, features: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Masks for a run of frames: the members' (weighted) mean; then every member's new
        state, in ``state_spec``'s order."""
        total: torch.Tensor | None = None
        new: list[torch.Tensor] = []
        start = 0
        for member, n_states, share in zip(self.members, self._n_states, self._shares, strict=True):
            masks, *member_state = member(features, *state[start : start + n_states])
            start += n_states
            total = masks * share if total is None else total + masks * share
            new += member_state
        assert total is not None  # two or more members, by the config
        return (total, *new)


def build_front_end(config: EnsembleConfig) -> FrontEnd:
    first = _member_configs(config)[0]
    return get_family(first.family).build_front_end(first)


FAMILY = ModelFamily("ensemble", EnsembleConfig, EnsembleMaskNet, build_front_end, {"default": {}})


def ensemble_from_checkpoints(paths: Sequence[str], weights: Sequence[float] = ()) -> SeparatorNet:
    """A ``SeparatorNet`` of the ensemble of these checkpoints, each member with its trained
    weights, their masks' mean weighted by ``weights`` (one per checkpoint; none: all alike)."""
    from .checkpoint import load_checkpoint
    from .separator import SeparatorNet

    members = [load_checkpoint(path)[0] for path in paths]
    model = SeparatorNet(ensemble_config([member.config for member in members], weights))
    for net, member in zip(model.net.members, members, strict=True):  # type: ignore[arg-type]
        net.load_state_dict(member.net.state_dict())
    model.eval()
    return model


def main(argv: Sequence[str] | None = None) -> int:
    from ...realtime.errors import UserError
    from .checkpoint import save_checkpoint

    parser = argparse.ArgumentParser(
        prog="python -m livestems.models.families.ensemble",
        description="write one checkpoint whose masks are the mean of these checkpoints' "
        "(export it with livestems export)",
    )
    parser.add_argument("checkpoints", nargs="+", help="two or more .pt files")
    parser.add_argument("-o", "--output", required=True, help="the ensemble's .pt file")
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=(),
        help="how much each checkpoint's masks count, one number per checkpoint in their order "
        "(default: all alike)",
    )
    args = parser.parse_args(argv)
    try:
        model = ensemble_from_checkpoints(args.checkpoints, args.weights)
        save_checkpoint(args.output, model, members=list(args.checkpoints))
    except (UserError, OSError) as error:
        print(f"livestems ensemble: {error}", file=sys.stderr)
        return 1
    n_parameters = sum(parameter.numel() for parameter in model.parameters())
    assert isinstance(model.config, EnsembleConfig)  # ensemble_from_checkpoints built it
    weighted = f", weighted {' : '.join(f'{w:g}' for w in args.weights)}" if args.weights else ""
    print(
        f"Wrote {args.output}: the mean of {len(args.checkpoints)} models' masks{weighted} "
        f"({', '.join(member['family'] for member in model.config.members)}), "
        f"{n_parameters:,} parameters."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
