"""Findings and the validation report: one list for structural and domain problems."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


def json_path(parts: Iterable[Any]) -> str:
    """`$.pep.targets[2].owner` from ('pep', 'targets', 2, 'owner')."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


@dataclass(frozen=True)
class Finding:
    severity: Severity
    path: str
    rule: str
    message: str
    hint: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def format(self) -> str:
        text = f"{self.severity}: {self.path}: {self.message} [{self.rule}]"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


@dataclass
class Report:
    """Everything found in one document. `ok` means no errors (warnings allowed)."""

    source: str
    schema: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def passed(self, strict: bool = False) -> bool:
        return self.ok and not (strict and self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "schema": self.schema,
            "valid": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }
