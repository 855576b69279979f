"""Released schemas and the changes that break them.

A route's model is released as JSON Schema in its domain's package (the folder of its handler's
module): `<domain>/schemas/<type>.v<n>.json`
(`fleet events release` writes it). A producer built against version n must keep being taken
while the route says version n, so against the released schema a current model may widen but not:
remove or rename a required field, add a required field, narrow a type or a constraint (minimum,
length, pattern, enum), or start refusing fields it let through. Such a change needs
`data_version` bumped, which makes the change a new contract (and `dataschema` of the old version
is refused at the door).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from handlers.routing import Route

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")

Schema = dict[str, Any]


def current_schema(route: Route) -> Schema:
    """The JSON Schema of the route's model as it is now."""
    assert route.data is not None
    return route.data.model_json_schema()


def released_path(route: Route, version: int | None = None) -> Path:
    """Where the route's schema of `version` (its current one by default) is kept."""
    folder = Path(inspect.getfile(route.handler)).parent / "schemas"
    return folder / f"{route.type}.v{version or route.data_version}.json"


def released_schema(route: Route) -> Schema | None:
    path = released_path(route)
    return json.loads(path.read_text()) if path.exists() else None


def check(route: Route) -> list[str]:
    """Why the route's model does not honour its released schema of the same version (empty: it
    does); a version never released is a problem too."""
    released = released_schema(route)
    if released is None:
        return [f"{route.type} v{route.data_version} is not released: run `fleet events release`"]
    return [
        f"{route.type} v{route.data_version}: {problem}"
        for problem in breaking_changes(released, current_schema(route))
    ]


def release(route: Route) -> Path:
    """Write the route's current schema as its released one; refuses a breaking change."""
    released = released_schema(route)
    if released is not None and (problems := breaking_changes(released, current_schema(route))):
        raise ValueError(
            f"{route.type} v{route.data_version}: {'; '.join(problems)}: bump its data_version to release"
        )
    path = released_path(route)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(current_schema(route), indent=2, sort_keys=True) + "\n")
    return path


def breaking_changes(released: Schema, current: Schema) -> list[str]:
    """What a producer of `released` data would find refused under `current`, one line each."""
    return _compare(_Doc(released), released, _Doc(current), current, "data")


class _Doc:
    def __init__(self, root: Schema) -> None:
        self._defs: dict[str, Schema] = root.get("$defs", {})

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            schema = self._defs[schema["$ref"].rsplit("/", 1)[-1]]
        return schema


def _branches(doc: _Doc, schema: Schema) -> tuple[list[Schema], bool]:
    """The non-null alternatives of a schema, and whether it takes null."""
    schema = doc.resolve(schema)
    # A typed schema's own anyOf (say, "html or text") is a further rule on it, not alternatives.
    typed = "type" in schema or "properties" in schema
    alternatives: list[Schema] = (not typed and (schema.get("anyOf") or schema.get("oneOf"))) or [schema]
    options = [doc.resolve(option) for option in alternatives]
    nullable = any(option.get("type") == "null" for option in options)
    return [option for option in options if option.get("type") != "null"], nullable


def _types(schema: Schema) -> set[str]:
    kind = schema.get("type")
    types = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    return {"number", "integer"} if "number" in types else types


def _compare(old_doc: _Doc, old: Schema, new_doc: _Doc, new: Schema, path: str) -> list[str]:
    old_options, old_null = _branches(old_doc, old)
    new_options, new_null = _branches(new_doc, new)
    if old_null and not new_null:
        return [f"{path}: no longer takes null"]
    if len(old_options) != 1 or len(new_options) != 1:
        old_types = set().union(*(_types(o) for o in old_options)) if old_options else set()
        new_types = set().union(*(_types(o) for o in new_options)) if new_options else set()
        lost = old_types - new_types if new_types else set()
        return [f"{path}: no longer takes {', '.join(sorted(lost))}"] if lost else []
    return _compare_one(old_doc, old_options[0], new_doc, new_options[0], path)


def _compare_one(old_doc: _Doc, old: Schema, new_doc: _Doc, new: Schema, path: str) -> list[str]:
    problems: list[str] = []
    old_types, new_types = _types(old), _types(new)
    if new_types and (lost := old_types - new_types if old_types else new_types):
        problems.append(f"{path}: type narrowed (no longer takes {', '.join(sorted(lost))})")
    for bound in _LOWER_BOUNDS:
        if bound in new and (bound not in old or new[bound] > old[bound]):
            problems.append(f"{path}: {bound} raised to {new[bound]}")
    for bound in _UPPER_BOUNDS:
        if bound in new and (bound not in old or new[bound] < old[bound]):
            problems.append(f"{path}: {bound} lowered to {new[bound]}")
    if "pattern" in new and new.get("pattern") != old.get("pattern"):
        problems.append(f"{path}: pattern changed to {new['pattern']!r}")
    for key in ("enum", "const"):
        if key in new:
            kept: list[Any] = new[key] if key == "enum" else [new[key]]
            if key not in old:
                problems.append(f"{path}: {key} narrowed to {kept}")
                continue
            was: list[Any] = old[key] if key == "enum" else [old[key]]
            if any(value not in kept for value in was):
                problems.append(f"{path}: {key} narrowed to {kept}")
    if "object" in old_types or "properties" in old:
        problems += _compare_objects(old_doc, old, new_doc, new, path)
    if "items" in old and "items" in new:
        problems += _compare(old_doc, old["items"], new_doc, new["items"], f"{path}[]")
    return problems


def _compare_objects(old_doc: _Doc, old: Schema, new_doc: _Doc, new: Schema, path: str) -> list[str]:
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    closed = new.get("additionalProperties") is False
    for name in sorted(old_props):
        if name not in new_props:
            if name in old_required:
                problems.append(f"{path}.{name}: required field removed (or renamed)")
            elif closed:
                problems.append(f"{path}.{name}: field removed, and unknown fields are refused")
            continue
        problems += _compare(old_doc, old_props[name], new_doc, new_props[name], f"{path}.{name}")
    problems += [f"{path}.{name}: new required field" for name in sorted(new_required - old_required)]
    if closed and old.get("additionalProperties") is not False:
        problems.append(f"{path}: unknown fields are now refused")
    return problems
