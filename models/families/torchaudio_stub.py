"""Importing ``openunmix`` without torchaudio: a stub that fails loudly if it is ever used.

``import openunmix`` imports ``torchaudio`` at the top of ``openunmix/utils.py`` and
``openunmix/transforms.py``, and no torchaudio build matches torch 2.13. Its model class
(``openunmix.model.OpenUnmix``) and the umx separator never call it: ``utils.py`` uses it only
to resample in ``preprocess``, and ``transforms.py`` never names it after the import. So
``openunmix`` is imported inside ``torchaudio_stub()``: a module finder placed first on
``sys.meta_path`` for the duration of that import supplies ``torchaudio`` (and any
``torchaudio.*``) as an explicit stub whose every attribute access raises
``TorchaudioStubError``, naming the attribute. ``openunmix``'s modules keep that stub as their
global ``torchaudio``, so if Open-Unmix ever used torchaudio on our path, it would stop with that
error instead of computing something else. The stub leaves ``sys.modules`` when the import is
done (a real ``torchaudio`` loaded before is put back), so nothing else ever sees it.

Used by the benchmark's peers (``export/peers.py``) and the offline Open-Unmix baseline family
(``models/families/umx.py``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class TorchaudioStubError(RuntimeError):
    """Code imported under ``torchaudio_stub()`` used torchaudio, which is not there."""


class _TorchaudioStub(types.ModuleType):
    """Stands in for ``torchaudio``: importable, and any use of it raises."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            # Python's own probes (__file__, __path__ of a submodule, ...) stay ordinary.
            raise AttributeError(name)
        raise TorchaudioStubError(
            f"{self.__name__}.{name} was used, but torchaudio is only a stub here: "
            "livestems imports openunmix without torchaudio (no build of it matches this "
            "torch) because Open-Unmix's model never uses it. Something on that path now does, "
            "so Open-Unmix cannot be used as it is."
        )


class _TorchaudioStubLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _TorchaudioStub(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # a package, so that torchaudio.* comes here too


class _TorchaudioStubFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] != "torchaudio":
            return None
        return importlib.machinery.ModuleSpec(fullname, _TorchaudioStubLoader(), is_package=True)


def _torchaudio_modules() -> dict[str, types.ModuleType]:
    return {
        name: module for name, module in sys.modules.items() if name.split(".")[0] == "torchaudio"
    }


@contextmanager
def torchaudio_stub() -> Iterator[None]:
    """While inside, ``import torchaudio`` gives a stub whose every attribute raises.

    Only for importing a package that imports torchaudio without needing it. On the way out
    the stubs leave ``sys.modules`` and any real torchaudio modules loaded before come back.
    """
    saved = _torchaudio_modules()
    for name in saved:
        del sys.modules[name]
    finder = _TorchaudioStubFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in _torchaudio_modules():
            del sys.modules[name]
        sys.modules.update(saved)
