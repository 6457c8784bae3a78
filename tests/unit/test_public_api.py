"""The curated public API: exactly these names, each resolving, none importing the world on `import laxchange`."""

from __future__ import annotations

import subprocess
import sys

import laxchange

EXPECTED = {
    "__version__",
    "LaxError", "InvalidData", "UsageError", "SecurityError", "TransportError", "TransientTransportError",
    "ConfigError", "InternalError", "ExitCode", "CODES",
    "Clock", "SystemClock", "FixedClock", "Home",
    "validate_document", "validate_file", "validate_bytes", "Report", "Finding",
    "EducationRecord", "PlacementNotification", "PepTransfer", "ExclusionNotice", "Receipt",
    "pack", "open_package", "inspect", "read_manifest", "Manifest", "PackResult", "Opened",
    "KeyStore", "PartnerDirectory", "Partner", "build_card",
    "Party", "InboxResult",
}


def test_all_is_the_curated_list() -> None:
    assert set(laxchange.__all__) == EXPECTED
    assert len(laxchange.__all__) == len(EXPECTED)


def test_all_and_the_lazy_table_agree() -> None:
    assert set(laxchange.__all__) - {"__version__"} == set(laxchange._EXPORTS)


def test_every_public_name_resolves() -> None:
    for name in laxchange.__all__:
        assert getattr(laxchange, name) is not None, name


def test_public_names_are_the_real_objects() -> None:
    from laxchange.exchange.party import Party
    from laxchange.validate import validate_document

    assert laxchange.Party is Party and laxchange.validate_document is validate_document


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        laxchange.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_laxchange_is_cheap() -> None:
    """`import laxchange` must not pull in the crypto, SSH or schema stacks (CLI start-up)."""
    code = ("import sys, laxchange; heavy = [m for m in ('paramiko', 'cryptography', 'jsonschema', 'pydantic') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
