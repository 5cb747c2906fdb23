"""livestems: real-time music source separation, as a Python library.

    import livestems
    stems = livestems.separate(audio, sample_rate)            # {"vocals": array, ...}, any rate
    sep = livestems.Separator.load("ensemble-live", provider="auto")  # live: 12.9 ms behind
    sep.prepare(sample_rate, max_block=512)                    # plugin surface
    out = sep.process(block)            # any block length; state kept until sep.reset()

Audio is samples first, ``(n_samples, n_channels)`` float32; stems are a mapping from name to
such an array, or a leading axis ``(n_stems, n_samples, n_channels)`` in ``Separator.stems``
order (README.md, "Conventions").

This package's folder is ``realtime/api/`` (pyproject.toml maps it to ``livestems``): the
repository's top-level folders are fixed, and the API belongs with the runtime, which never
imports torch. Importing it imports nothing else: numpy, soxr and onnxruntime load on first use
of ``separate`` or ``Separator`` (``import livestems`` stays fast for a program that only
checks the version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .realtime.runtime.separator import Separator, separate

__all__ = ["Separator", "separate", "list_models"]


def __getattr__(name: str) -> Any:
    # PEP 562: the heavy imports happen on first use, not on ``import livestems``
    if name in ("Separator", "separate"):
        from .realtime.runtime import separator

        return getattr(separator, name)
    if name == "list_models":
        from .realtime.model_catalog import model_files

        return lambda: [path.stem for _, path in model_files()]
    raise AttributeError(f"module 'livestems' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
