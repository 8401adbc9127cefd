"""The IPython extension: ``%load_ext kiro_lc`` registers ``%kiro`` / ``%%kiro``.

Loading imports only IPython/traitlets code of this package: no HTTP client, no widgets, no
LangChain model code and no credential reads happen until the first ``%%kiro`` cell.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_NAME = "KiroMagics"


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%kiro`` / ``%%kiro`` on ``ipython`` (a no-op if already registered)."""
    from kiro_lc.magics.magics import KiroMagics

    if _NAME in ipython.magics_manager.registry:
        return
    ipython.register_magics(KiroMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove ``%kiro`` / ``%%kiro``, forget the conversation and close the model clients."""
    manager = ipython.magics_manager
    magics = manager.registry.pop(_NAME, None)
    if magics is None:
        return
    for kind in ("line", "cell"):
        manager.magics[kind].pop("kiro", None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    magics.close()
