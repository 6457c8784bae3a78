"""laxchange: move a looked-after child's education record safely between councils and schools.

The public API, for case-management systems and scripts: everything listed in `__all__` is
supported and versioned; every other module is internal and may change between releases.

    import laxchange
    report = laxchange.validate_document(doc)              # schema + domain rules
    with laxchange.Party.from_home(laxchange.Home(path)) as me:
        me.pack(doc, message_type="pep-transfer", recipient="URN:123456", out=path_out)

Names are loaded on first use (PEP 562), so `import laxchange` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module it lives in
_EXPORTS: dict[str, str] = {
    # errors
    "LaxError": "laxchange.errors", "InvalidData": "laxchange.errors", "UsageError": "laxchange.errors",
    "SecurityError": "laxchange.errors", "TransportError": "laxchange.errors",
    "TransientTransportError": "laxchange.errors", "ConfigError": "laxchange.errors",
    "InternalError": "laxchange.errors", "ExitCode": "laxchange.errors", "CODES": "laxchange.errors",
    # injectables
    "Clock": "laxchange.clock", "SystemClock": "laxchange.clock", "FixedClock": "laxchange.clock",
    "Home": "laxchange.home",
    # validation
    "validate_document": "laxchange.validate", "validate_file": "laxchange.validate",
    "validate_bytes": "laxchange.validate", "Report": "laxchange.validate", "Finding": "laxchange.validate",
    # the messages (pydantic models the schemas are generated from)
    "EducationRecord": "laxchange.models", "PlacementNotification": "laxchange.models",
    "PepTransfer": "laxchange.models", "ExclusionNotice": "laxchange.models", "Receipt": "laxchange.models",
    # the package format
    "pack": "laxchange.package", "open_package": "laxchange.package", "inspect": "laxchange.package",
    "read_manifest": "laxchange.package", "Manifest": "laxchange.package", "PackResult": "laxchange.package",
    "Opened": "laxchange.package",
    # trust
    "KeyStore": "laxchange.trust", "PartnerDirectory": "laxchange.trust", "Partner": "laxchange.trust",
    "build_card": "laxchange.trust",
    # what a party does
    "Party": "laxchange.exchange", "InboxResult": "laxchange.exchange",
}

__all__ = [
    "CODES",
    "Clock",
    "ConfigError",
    "EducationRecord",
    "ExclusionNotice",
    "ExitCode",
    "Finding",
    "FixedClock",
    "Home",
    "InboxResult",
    "InternalError",
    "InvalidData",
    "KeyStore",
    "LaxError",
    "Manifest",
    "Opened",
    "PackResult",
    "Partner",
    "PartnerDirectory",
    "Party",
    "PepTransfer",
    "PlacementNotification",
    "Receipt",
    "Report",
    "SecurityError",
    "SystemClock",
    "TransientTransportError",
    "TransportError",
    "UsageError",
    "__version__",
    "build_card",
    "inspect",
    "open_package",
    "pack",
    "read_manifest",
    "validate_bytes",
    "validate_document",
    "validate_file",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily below
    from laxchange.clock import Clock, FixedClock, SystemClock
    from laxchange.errors import (
        CODES,
        ConfigError,
        ExitCode,
        InternalError,
        InvalidData,
        LaxError,
        SecurityError,
        TransientTransportError,
        TransportError,
        UsageError,
    )
    from laxchange.exchange import InboxResult, Party
    from laxchange.home import Home
    from laxchange.models import EducationRecord, ExclusionNotice, PepTransfer, PlacementNotification, Receipt
    from laxchange.package import Manifest, Opened, PackResult, inspect, open_package, pack, read_manifest
    from laxchange.trust import KeyStore, Partner, PartnerDirectory, build_card
    from laxchange.validate import Finding, Report, validate_bytes, validate_document, validate_file


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'laxchange' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
