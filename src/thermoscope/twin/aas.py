"""The twin as an Asset Administration Shell (AAS v3), with the Eclipse BaSyx Python SDK.

One shell for the site (global asset id ``urn:thermoscope:site:<id>``) refers to one submodel,
``LineModel``, whose elements are the site's fields: scalars become ``Property`` elements
(xs:string, xs:double, xs:long, xs:boolean), objects ``SubmodelElementCollection`` and lists
``SubmodelElementList``. :func:`site_to_aas_json` writes the AAS JSON serialisation;
:func:`site_from_aas_json` reads it with the SDK and rebuilds the :class:`~thermoscope.twin.
model.Site` (a field left out because it was empty or ``None`` takes its default).
"""

from __future__ import annotations

import io
from typing import Any

from basyx.aas import model
from basyx.aas.adapter.json import read_aas_json_file, write_aas_json_file

from thermoscope.twin.model import Site, TwinError, site_from_json

SUBMODEL_ID_SHORT = "LineModel"
SEMANTIC_ID = "urn:thermoscope:twin:line-model:1"


def _shell_id(site: Site) -> str:
    return f"urn:thermoscope:site:{site.id}"


def _property(id_short: str | None, value: Any) -> model.Property:
    types: dict[type, Any] = {
        bool: model.datatypes.Boolean,
        int: model.datatypes.Long,
        float: model.datatypes.Double,
        str: model.datatypes.String,
    }
    return model.Property(id_short, types[type(value)], value=value)


def _element(id_short: str | None, value: Any) -> model.SubmodelElement | None:
    if value is None:
        return None
    if isinstance(value, dict):
        children = [
            element for key, item in value.items() if (element := _element(key, item)) is not None
        ]
        return model.SubmodelElementCollection(id_short, value=children)
    if isinstance(value, list):
        if not value:
            return None
        items = [e for item in value if (e := _element(None, item)) is not None]
        first = items[0]
        if isinstance(first, model.Property):
            return model.SubmodelElementList(
                id_short, model.Property, value=items, value_type_list_element=first.value_type
            )
        return model.SubmodelElementList(id_short, type(first), value=items)
    return _property(id_short, value)


def _value(element: model.SubmodelElement) -> Any:
    if isinstance(element, model.Property):
        return element.value
    if isinstance(element, model.SubmodelElementCollection):
        return {child.id_short: _value(child) for child in element.value}
    if isinstance(element, model.SubmodelElementList):
        return [_value(child) for child in element.value]
    raise TwinError(f"AAS element {element.id_short!r}: unexpected kind {type(element).__name__}")


def site_to_aas(site: Site) -> model.DictIdentifiableStore[model.Identifiable]:
    """The site as an object store holding its shell and its ``LineModel`` submodel."""
    data = site.model_dump(mode="json")
    elements = [el for key, item in data.items() if (el := _element(key, item)) is not None]
    submodel = model.Submodel(
        f"{_shell_id(site)}:line-model",
        id_short=SUBMODEL_ID_SHORT,
        submodel_element=elements,
        semantic_id=model.ExternalReference(
            (model.Key(model.KeyTypes.GLOBAL_REFERENCE, SEMANTIC_ID),)
        ),
    )
    shell = model.AssetAdministrationShell(
        id_=_shell_id(site),
        id_short=f"site_{site.id.replace('-', '_')}",
        asset_information=model.AssetInformation(
            asset_kind=model.AssetKind.INSTANCE, global_asset_id=_shell_id(site)
        ),
        submodel={model.ModelReference.from_referable(submodel)},
    )
    store: model.DictIdentifiableStore[model.Identifiable] = model.DictIdentifiableStore(
        [shell, submodel]
    )
    return store


def site_to_aas_json(site: Site) -> str:
    """The site's AAS environment as JSON text."""
    buffer = io.StringIO()
    write_aas_json_file(buffer, site_to_aas(site), indent=1)
    return buffer.getvalue()


def site_from_aas(store: model.AbstractObjectStore[str, model.Identifiable]) -> Site:
    """The site of an object store holding a ``LineModel`` submodel."""
    submodels = [
        obj
        for obj in store
        if isinstance(obj, model.Submodel) and obj.id_short == SUBMODEL_ID_SHORT
    ]
    if len(submodels) != 1:
        raise TwinError(f"AAS: expected one {SUBMODEL_ID_SHORT} submodel, found {len(submodels)}")
    data = {element.id_short: _value(element) for element in submodels[0].submodel_element}
    return site_from_json(data, source=f"AAS submodel {SUBMODEL_ID_SHORT}")


def site_from_aas_json(text: str) -> Site:
    """The site of an AAS JSON environment (read strictly by the BaSyx SDK)."""
    try:
        store = read_aas_json_file(io.StringIO(text), failsafe=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise TwinError(f"AAS JSON: {exc}") from exc
    return site_from_aas(store)
