"""Failure modes of `open`: every single-byte change, truncation, extension, oversized input.

Each must be refused with SecurityError (exit 3) and leave no output file behind; bytes without
the format line are not a package at all (UsageError `package.not-a-package`, exit 2).
"""

from __future__ import annotations

import io
import random

import pytest

from laxchange import package
from laxchange.errors import LaxError, SecurityError, UsageError
from tests.support.parties import record, world


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    a, b, _c = world(tmp_path_factory.mktemp("adv"))
    data = a.pack(record(5), "URN:123456")
    return a, b, data


def _refused(b, data: bytes, out) -> LaxError:
    with pytest.raises((SecurityError, UsageError)) as ei:
        b.open(data, out=out)
    assert not out.exists()
    if isinstance(ei.value, UsageError):
        assert ei.value.code == "package.not-a-package" and not data.startswith(package.FORMAT_LINE)
        assert ei.value.exit_code == 2 and ei.value.message.startswith("not a laxchange package")
        return ei.value
    assert ei.value.exit_code == 3 and ei.value.message.startswith("package rejected: ")
    return ei.value


def _regions(data: bytes) -> tuple[int, int]:
    """(end of the manifest line, end of the age header)."""
    manifest_end = data.index(b"\n", data.index(b"\n") + 1) + 1
    mac_line = data.index(b"\n--- ", manifest_end) + 1
    header_end = data.index(b"\n", mac_line) + 1
    return manifest_end, header_end


def test_the_unmodified_package_opens(setup, tmp_path):
    _, b, data = setup
    assert b.open(data, out=tmp_path / "ok.json").document == record(5)


def test_every_byte_of_manifest_and_header_flipped(setup, tmp_path):
    _, b, data = setup
    _manifest_end, header_end = _regions(data)
    assert header_end > 1500  # the hybrid stanza alone is ~1.5 KB
    out = tmp_path / "out.json"
    codes: dict[str, int] = {}
    for i in range(header_end):
        for mask in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= mask
            err = _refused(b, bytes(bad), out)
            codes[err.code] = codes.get(err.code, 0) + 1
    assert "package.tampered" in codes and "package.bad-signature" in codes


def test_sampled_payload_bytes_flipped(setup, tmp_path):
    _, b, data = setup
    _, header_end = _regions(data)
    rng = random.Random(1234)
    positions = [*sorted({rng.randrange(header_end, len(data)) for _ in range(300)}), len(data) - 1]
    for i in positions:
        bad = bytearray(data)
        bad[i] ^= 1 << rng.randrange(8)
        assert _refused(b, bytes(bad), tmp_path / "o.json").code == "package.tampered"


def test_every_truncation_point_in_a_sample(setup, tmp_path):
    _, b, data = setup
    for n in list(range(40)) + list(range(40, len(data), 97)) + [len(data) - 1]:
        _refused(b, data[:n], tmp_path / "t.json")


def test_appended_bytes(setup, tmp_path):
    _, b, data = setup
    assert _refused(b, data + b"\x00", tmp_path / "e.json").code == "package.tampered"


def test_wrong_format_version(setup, tmp_path):
    _, b, data = setup
    err = _refused(b, b"LAXCHANGE/2\n" + data[len(b"LAXCHANGE/1\n"):], tmp_path / "v.json")
    assert err.code == "package.wrong-format-version"


def test_not_a_package(setup, tmp_path):
    _, b, _ = setup
    assert _refused(b, b"age-encryption.org/v1\n", tmp_path / "n.json").code == "package.not-a-package"
    assert _refused(b, b"", tmp_path / "n.json").code == "package.not-a-package"
    assert _refused(b, b'{"schema": "x"}\n', tmp_path / "n.json").code == "package.not-a-package"


def test_oversized_manifest_line(setup, tmp_path):
    _, b, _data = setup
    huge = b"LAXCHANGE/1\n" + b"{" + b" " * (package.MAX_MANIFEST_BYTES + 10) + b"}\n"
    assert _refused(b, huge, tmp_path / "h.json").code == "package.tampered"


def test_duplicate_key_in_manifest(setup, tmp_path):
    _, b, data = setup
    first, manifest, rest = data.split(b"\n", 2)
    dup = manifest[:-1] + b',"payloadType":"x"}'
    assert _refused(b, first + b"\n" + dup + b"\n" + rest, tmp_path / "d.json").code == "package.tampered"


def test_swapped_payload_from_another_package(setup, tmp_path):
    a, b, data = setup
    other = a.pack(record(6), "URN:123456")
    _, _header_end = _regions(data)
    first, manifest, _ = data.split(b"\n", 2)
    other_payload = other.split(b"\n", 2)[2]
    assert _refused(b, first + b"\n" + manifest + b"\n" + other_payload, tmp_path / "s.json").code == "package.tampered"


def test_oversized_record_is_refused_before_packing(tmp_path):
    from laxchange.errors import InvalidData

    big = tmp_path / "big.json"
    big.write_bytes(b'{"x":"' + b"a" * (package.MAX_RECORD_BYTES + 1) + b'"}')
    with pytest.raises(InvalidData) as ei:
        package.read_record(big)
    assert ei.value.exit_code == 1


def test_inspect_refuses_tampered_manifest(setup):
    _, _, data = setup
    bad = bytearray(data)
    bad[20] ^= 1
    with pytest.raises(SecurityError):
        package.inspect(io.BytesIO(bytes(bad)))


def _resign(a, data: bytes, payload: bytes) -> bytes:
    """Re-sign the manifest (as the genuine sender) over a changed payload, so that the payload
    reaches decryption instead of stopping at the manifest hash."""
    import base64
    import hashlib
    import json

    from laxchange import dsse
    from laxchange._util import jsonio

    first, manifest, _ = data.split(b"\n", 2)
    m = json.loads(base64.b64decode(json.loads(manifest)["payload"]))
    m["payload_size"], m["payload_sha256"] = len(payload), hashlib.sha256(payload).hexdigest()
    env = dsse.sign(package.MANIFEST_PAYLOAD_TYPE, jsonio.dumps_canonical(m), a.store.signers())
    return first + b"\n" + jsonio.dumps_canonical(env.to_dict()) + b"\n" + payload


def test_payload_changes_behind_a_valid_manifest_fail_decryption(setup, tmp_path):
    a, b, data = setup
    payload = data.split(b"\n", 2)[2]
    assert b.open(_resign(a, data, payload)).document == record(5)
    rng = random.Random(99)
    for i in sorted({rng.randrange(len(payload)) for _ in range(120)}):
        bad = bytearray(payload)
        bad[i] ^= 0x04
        err = _refused(b, _resign(a, data, bytes(bad)), tmp_path / "p.json")
        assert err.code == "package.tampered" and "decryption" in err.message
    for cut in (len(payload) - 1, len(payload) - 17, len(payload) // 2):
        assert _refused(b, _resign(a, data, payload[:cut]), tmp_path / "p.json").code == "package.tampered"
