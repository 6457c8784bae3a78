"""Property tests: the parsers that see untrusted bytes fail only in their documented ways."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from laxchange import age, package
from laxchange.age import format as age_format
from laxchange.errors import SecurityError, UsageError

_HEADER = (b"age-encryption.org/v1\n-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n"
           b"hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE\n--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=len(_HEADER)))
def test_age_header_parser_only_raises_header_errors(junk, cut):
    data = _HEADER[:cut] + junk
    try:
        header = age_format.parse_header(io.BytesIO(data))
    except age.HeaderError:
        return
    # Whatever parses must re-encode to exactly the bytes it came from (canonical form).
    assert data.startswith(age_format.encode_header_without_mac(header.stanzas))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_manifest_reader_only_raises_security_errors(junk):
    """...or, for bytes without the format line, the usage error `package.not-a-package`."""
    for prefix in (b"", package.FORMAT_LINE, package.FORMAT_LINE + b'{"payload":"'):
        try:
            package.read_manifest(io.BytesIO(prefix + junk))
        except UsageError as exc:
            assert exc.code == "package.not-a-package" and not (prefix + junk).startswith(package.FORMAT_LINE)
        except SecurityError as exc:
            assert exc.code in ("package.tampered", "package.wrong-format-version")
        else:
            raise AssertionError("random bytes parsed as a manifest")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=70), max_size=4))
def test_stanza_encoding_round_trips(bodies):
    stanzas = [age.Stanza("grease", ["a", "b"], body) for body in bodies] or [age.Stanza("x", [], b"")]
    encoded = age_format.encode_header_without_mac(stanzas) + b" " + b"A" * 43 + b"\n"
    parsed = age_format.parse_header(io.BytesIO(encoded))
    assert [(s.type, s.args, s.body) for s in parsed.stanzas] == [(s.type, s.args, s.body) for s in stanzas]
