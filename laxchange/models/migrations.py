"""Upgrading documents between schema versions.

Rules (docs/schemas.md): within a major version, a newer minor only adds optional fields, so a
document moves up by rewriting its `schema` id alone. Between majors, a registered function
does the work; `Migrations.missing()` lists any major step that lacks one, and a test fails
while that list is non-empty. Migrations only go forward: an old reader cannot be given data
it has no fields for.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from laxchange.errors import InvalidData, UsageError
from laxchange.models import schemastore
from laxchange.models.common import SCHEMA_BASE

MigrationFn = Callable[[dict[str, Any]], dict[str, Any]]


def _major(version: str) -> int:
    return schemastore.version_key(version)[0]


@dataclass(frozen=True)
class Migration:
    """Turns a document of `name` major `from_major` into one valid under `to_version`."""

    name: str
    from_major: int
    to_version: str
    fn: MigrationFn


@dataclass
class Migrations:
    """A registry of major-version migrations (injectable so tests can add their own)."""

    items: list[Migration] = field(default_factory=list)
    versions: Callable[[str], list[str]] = schemastore.versions

    def register(self, name: str, from_major: int, to_version: str) -> Callable[[MigrationFn], MigrationFn]:
        if _major(to_version) != from_major + 1:
            raise ValueError("a migration goes from one major version to the next")

        def wrap(fn: MigrationFn) -> MigrationFn:
            self.items.append(Migration(name, from_major, to_version, fn))
            return fn
        return wrap

    def _find(self, name: str, from_major: int) -> Migration | None:
        return next((m for m in self.items if m.name == name and m.from_major == from_major), None)

    def missing(self) -> list[str]:
        """Major steps between published versions that have no migration."""
        out = []
        for name in sorted({s.name for s in schemastore.list_schemas()}):
            majors = sorted({_major(v) for v in self.versions(name)})
            for a, b in itertools.pairwise(majors):
                if self._find(name, a) is None:
                    out.append(f"{name}: no migration from {a}.x to {b}.x")
        return out

    def upgrade(self, doc: dict[str, Any], to_version: str | None = None, *, in_place: bool = False) -> dict[str, Any]:
        """A copy of `doc` moved up to `to_version` (default: the latest published version).

        `in_place=True`: `doc` is the caller's to give up (parsed for this call, not used again), so
        it is moved up itself instead of a deep copy (a record's copy was 0.8 ms, most of reading
        one for the statutory clocks)."""
        name, version = schemastore.identify(doc)
        target = to_version or self.versions(name)[-1]
        if target not in self.versions(name):
            raise UsageError(f"schema {name} has no version {target}", code="migrate.unknown-version",
                             hint=f"known versions: {', '.join(self.versions(name))}")
        if schemastore.version_key(target) < schemastore.version_key(version):
            raise UsageError(f"cannot migrate {name} down from {version} to {target}", code="migrate.downgrade",
                             hint="migrations only go forward; ask the sender for the older version")
        out = doc if in_place else copy.deepcopy(doc)
        current = version
        while _major(current) < _major(target):
            step = self._find(name, _major(current))
            if step is None:
                raise InvalidData(f"no migration for {name} from {current} to major {_major(current) + 1}",
                                  code="migrate.missing", hint="upgrade laxchange")
            out = step.fn(out)
            current = step.to_version
            out["schema"] = f"{SCHEMA_BASE}/{name}/{current}"
        out["schema"] = f"{SCHEMA_BASE}/{name}/{target}"
        _rewrite_embedded_ids(out, name, target)
        return out


def _rewrite_embedded_ids(doc: dict[str, Any], name: str, version: str) -> None:
    """A message embedding a whole document (a pep-transfer's `record`) names the embedded schema it wants.

    Within a major version the embedded document moves up the same way as the message: only its
    `schema` id changes, to the one the message's schema file references.
    """
    if not any(isinstance(v, dict) and "schema" in v for v in doc.values()):
        return  # nothing embedded (a receipt, an exclusion notice)
    for key, prop in schemastore.load(name, version).get("properties", {}).items():
        ref = prop.get("$ref") if isinstance(prop, dict) else None
        inner = doc.get(key)
        parsed = schemastore.parse_id(ref) if isinstance(ref, str) else None
        if parsed is None or not isinstance(inner, dict) or not isinstance(inner.get("schema"), str):
            continue
        have = schemastore.parse_id(inner["schema"])
        if have is not None and have[0] == parsed[0] and _major(have[1]) == _major(parsed[1]):
            inner["schema"] = ref


#: The migrations shipped with laxchange. Register each new major version's upgrade here.
REGISTRY = Migrations()
