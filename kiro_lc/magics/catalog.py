"""The model catalogue as the magic sees it: the live list (cached per session), model checks.

A name is accepted when it resolves to a model kiro-lc knows or to one the account lists;
otherwise the live list is fetched (once) and an unknown name fails with close matches (from
the live list, or from the built-in table when the list cannot be fetched).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiro_lc.errors import KiroError, KiroModelNotFoundError
from kiro_lc.models import KNOWN_MODELS, ModelList, resolve_model_id, suggest

if TYPE_CHECKING:
    from kiro_lc.magics.magics import KiroMagics

__all__ = ["check_model", "model_list", "picker_names"]

_SHORT_ALIASES = ("sonnet", "haiku", "opus", "auto")


def model_list(magics: KiroMagics, *, refresh: bool = False) -> ModelList:
    """The account's models from ListAvailableModels, fetched once per session unless refreshed."""
    if magics.session.models is None or refresh:
        magics.session.models = magics._list_models()
    models: ModelList = magics.session.models
    return models


def check_model(magics: KiroMagics, name: str) -> str:
    """The backend id for ``name``; raise ``KiroModelNotFoundError`` with suggestions if unknown."""
    resolved = resolve_model_id(name.strip())
    cached: ModelList | None = magics.session.models
    if resolved in KNOWN_MODELS or (cached is not None and cached.get(resolved) is not None):
        return resolved
    known = [*KNOWN_MODELS, *_SHORT_ALIASES]
    known += [alias for info in KNOWN_MODELS.values() for alias in info.friendly_ids]
    try:
        live = model_list(magics) if cached is None else cached
    except KiroError:
        # No live list: a typo of a known name still fails here; anything else may be a model
        # newer than this table, so let Kiro decide (ChatKiro adds suggestions if it refuses).
        if not suggest(name, known):
            return resolved
        live = ModelList()
    if live.get(resolved) is not None:
        return resolved
    close = suggest(name, dict.fromkeys([*live.ids(), *known]))
    hint = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise KiroModelNotFoundError(
        f"Unknown model {name!r}. {hint}`%kiro models` lists the models of your account.",
        reason="INVALID_MODEL_ID",
    )


def picker_names(models: ModelList) -> list[tuple[str, str]]:
    """(label, id) options for the model picker, in catalogue order."""
    options = []
    for model in models.models:
        label = model.model_id
        if model.rate_multiplier is not None:
            label += f"  ({model.rate_multiplier:g}× credits)"
        if model.model_id == models.default_model_id:
            label += "  · Kiro default"
        options.append((label, model.model_id))
    return options
