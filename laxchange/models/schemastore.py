"""The published schema files in schemas/: listing, loading, building, exporting, locking.

Released files are immutable: schemas/schemas.lock.json records the SHA-256 of every released
file, and `build` refuses to rewrite one. A minor version may only add optional fields; a major
version ships with a migration (laxchange.models.migrations).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from laxchange.errors import ConfigError, InvalidData, UsageError
from laxchange.models import schemagen
from laxchange.models.common import SCHEMA_BASE

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_ID_RE = re.compile(re.escape(SCHEMA_BASE) + r"/([a-z-]+)/(\d+\.\d+\.\d+)$")
LOCK_NAME = "schemas.lock.json"


def schema_dir() -> Path:
    """schemas/ in the source tree (override with LAXCHANGE_SCHEMA_DIR)."""
    return _schema_dir(os.environ.get("LAXCHANGE_SCHEMA_DIR"))


@lru_cache(maxsize=8)
def _schema_dir(env: str | None) -> Path:
    return Path(env) if env else Path(__file__).parent.parent / "schemas"


def version_key(v: str) -> tuple[int, int, int]:
    m = _VERSION_RE.match(v)
    if not m:
        raise UsageError(f"{v!r} is not a schema version (MAJOR.MINOR.PATCH)", code="schema.version")
    return int(m[1]), int(m[2]), int(m[3])


def parse_id(schema_id: str) -> tuple[str, str] | None:
    """('education-record', '1.0.0') from a schema $id, or None if it is not one of ours."""
    m = _ID_RE.match(schema_id) if isinstance(schema_id, str) else None
    return (m[1], m[2]) if m else None


@dataclass(frozen=True)
class SchemaFile:
    name: str
    version: str
    path: Path

    @property
    def id(self) -> str:
        return f"{SCHEMA_BASE}/{self.name}/{self.version}"

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def list_schemas(root: Path | None = None) -> list[SchemaFile]:
    """Every schema file under `root`, ordered by name then version (cached: files are immutable)."""
    return list(_list_cached(str(root or schema_dir())))


@lru_cache(maxsize=16)
def _list_cached(root_s: str) -> tuple[SchemaFile, ...]:
    root = Path(root_s)
    out = []
    for p in sorted(root.glob("*/*.json")):
        if _VERSION_RE.match(p.stem):
            out.append(SchemaFile(p.parent.name, p.stem, p))
    return tuple(sorted(out, key=lambda s: (s.name, version_key(s.version))))


def versions(name: str) -> list[str]:
    return [s.version for s in list_schemas() if s.name == name]


def latest(name: str) -> str:
    vs = versions(name)
    if not vs:
        raise UsageError(f"no schema named {name!r}", code="schema.unknown",
                         hint="run `laxchange schema list` to see the schemas")
    return vs[-1]


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime: float) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return doc


def load(name: str, version: str | None = None) -> dict[str, Any]:
    """The schema document `name@version` (latest if no version)."""
    version = version or latest(name)
    path = schema_dir() / name / f"{version}.json"
    if not path.is_file():
        known = ", ".join(versions(name)) or "none"
        raise UsageError(f"schema {name}@{version} does not exist (versions: {known})", code="schema.unknown",
                         hint="run `laxchange schema list`")
    return _load_cached(str(path), path.stat().st_mtime)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'education-record@1.0.0' → ('education-record', '1.0.0'); no '@' → latest."""
    name, _, version = ref.partition("@")
    return name, (version or None)


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def read_lock(root: Path | None = None) -> dict[str, str]:
    path = (root or schema_dir()) / LOCK_NAME
    if not path.exists():
        return {}
    files: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))["files"]
    return files


def write_lock(entries: dict[str, str], root: Path | None = None) -> None:
    path = (root or schema_dir()) / LOCK_NAME
    doc = {
        "comment": "SHA-256 of every released schema file. Released files never change: add a new version instead.",
        "files": dict(sorted(entries.items())),
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def check_lock(root: Path | None = None) -> list[str]:
    """Problems with released files: changed, missing, or present but not locked."""
    root = root or schema_dir()
    lock = read_lock(root)
    problems = []
    files = {f"{s.name}/{s.version}.json": s for s in list_schemas(root)}
    for rel, digest in lock.items():
        s = files.get(rel)
        if s is None:
            problems.append(f"{rel}: released schema file is missing")
        elif s.sha256() != digest:
            problems.append(f"{rel}: released schema file has changed (hash {s.sha256()[:12]}…, locked {digest[:12]}…)")
    for rel in files:
        if rel not in lock:
            problems.append(f"{rel}: not in {LOCK_NAME} (run `laxchange schema build --release`)")
    return problems


def build(root: Path | None = None, *, release: bool = False) -> list[str]:
    """Write the current versions generated from the models; refuse to alter a released file."""
    root = root or schema_dir()
    lock = read_lock(root)
    written = []
    for name, doc in schemagen.build_all().items():
        version = doc["x-laxchange-version"]
        rel = f"{name}/{version}.json"
        path = root / rel
        text = dump(doc)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if rel in lock and lock[rel] != digest:
            raise ConfigError(
                f"{rel} is released and the models now generate something different",
                code="schema.released-changed",
                hint=f"bump the version of {name} (minor for new optional fields, major with a migration)",
            )
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(rel)
        if release:
            lock[rel] = digest
    if release:
        write_lock(lock, root)
    _list_cached.cache_clear()
    return written


def export(dest: Path) -> list[Path]:
    """Copy every schema file (all versions) and the lock into `dest`, for other implementers."""
    out = []
    for s in list_schemas():
        target = dest / s.name / f"{s.version}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s.path.read_bytes())
        out.append(target)
    lock = schema_dir() / LOCK_NAME
    if lock.exists():
        (dest / LOCK_NAME).write_bytes(lock.read_bytes())
    return out


def identify(doc: Any, source: str = "<input>") -> tuple[str, str]:
    """Which schema a document claims via its top-level `schema` field."""
    if not isinstance(doc, dict):
        raise InvalidData(f"{source}: top level must be a JSON object", code="schema.not-object",
                          hint="a laxchange document is a JSON object with a `schema` field")
    sid = doc.get("schema")
    if sid is None:
        raise InvalidData(f"{source}: $.schema is missing, so the document type is unknown", code="schema.missing",
                          hint="add \"schema\": \"<the schema $id>\" or pass --type")
    parsed = parse_id(sid)
    if parsed is None:
        raise InvalidData(f"{source}: $.schema {sid!r} is not a laxchange schema id", code="schema.unknown-id",
                          hint=f"expected {SCHEMA_BASE}/<name>/<version>")
    return parsed
