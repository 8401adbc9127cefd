"""The model picker: an ipywidgets ``Dropdown`` bound both ways to ``KiroMagics.default_model``.

Widgets are controls only; answers never go through an ``Output`` widget (its content is not
saved in the notebook). ipywidgets is imported here, on the first ``%kiro models``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiro_lc.magics.catalog import picker_names
from kiro_lc.models import ModelList, resolve_model_id

if TYPE_CHECKING:
    from kiro_lc.magics.magics import KiroMagics

__all__ = ["model_picker"]


def model_picker(magics: KiroMagics, models: ModelList) -> Any:
    """A Dropdown of the account's models; picking one sets the default model, and
    ``%kiro use`` / ``%config`` changes show in the Dropdown."""
    import ipywidgets

    options = picker_names(models)
    ids = {model_id for _, model_id in options}
    current = resolve_model_id(magics.default_model)
    dropdown = ipywidgets.Dropdown(
        options=options,
        value=current if current in ids else None,
        description="Model:",
        layout=ipywidgets.Layout(width="max-content"),
    )

    def on_pick(change: dict[str, Any]) -> None:
        if change["new"] and resolve_model_id(magics.default_model) != change["new"]:
            magics.default_model = change["new"]

    def on_default(change: dict[str, Any]) -> None:
        wanted = resolve_model_id(change["new"])
        if wanted in ids and dropdown.value != wanted:
            dropdown.value = wanted

    dropdown.observe(on_pick, names="value")
    magics.observe(on_default, names="default_model")

    def unbind() -> None:
        dropdown.unobserve(on_pick, names="value")
        magics.unobserve(on_default, names="default_model")

    magics.session.unbind_pickers.append(unbind)
    magics.session.picker = dropdown
    return dropdown
