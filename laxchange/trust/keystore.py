"""A party's own keys: generation, storage encrypted at rest, rotation, revocation.

Layout of `<home>/keys/` (see keys/README.md in the repository):

- `keyring.json` — public metadata: party, name, role, SFTP endpoint, policy and every key
  (key id, use, algorithm, public key, validity, revocation).
- `<kid>.age` — one private key each, as an age file encrypted to the passphrase (scrypt
  recipient, work factor 2^18 by default). Mode 0600; a looser file is refused. Its plaintext
  is a standard key with our metadata beside it (`key_file_text`): an age identity file for an
  encryption key, PKCS#8 PEM for a signing key.
- `pre-identity-backup/<kid>.age` — files of releases before issue 12 (plaintext JSON), kept as
  they were when the first unlock migrated them (`_migrate_key_files`).
- `archive/<kid>.age` — retired and revoked decryption keys, kept so old packages still open.
  Retired signing keys are destroyed, not archived: their only remaining use would be forgery.
  That happens only in `prune` (`laxchange keys prune`), never as a side effect of another
  command, and only once the key is revoked or replaced by a rotation and past its overlap.
- `ssh_ed25519` / `ssh_ed25519.pub` — the SSH client identity for SFTP (OpenSSH format,
  encrypted with the same passphrase).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from laxchange import age, dsse
from laxchange._util import jsonio, timefmt
from laxchange._util.private import check_private_file
from laxchange.clock import Clock, SystemClock
from laxchange.errors import ConfigError, InvalidData, UsageError
from laxchange.home import Home, load_home_file
from laxchange.ledger.lock import RunLock
from laxchange.passphrase import (
    PassphraseSource,
    check_new_passphrase,
    default_passphrase_source,
    source_of,
    wrong_passphrase_hint,
)
from laxchange.transport.endpoints import check_fingerprint, parse_url
from laxchange.transport.identity import create_ssh_identity, reencrypt_ssh_identity, ssh_identity_fingerprint

ENCRYPTION = "encryption"
SIGNING = "signing"
#: The `use` of the SSH client key in `prune`'s entries (it is not in the keyring's key list).
SSH = "ssh"
ALG_HYBRID = "mlkem768x25519"
ALG_X25519 = "x25519"
ENCRYPTION_ALGS = (ALG_HYBRID, ALG_X25519)
SIGNING_ALGS = (dsse.ED25519, dsse.MLDSA65)

#: ASCII digits: `\d` takes any Unicode decimal digit, and LA:９１９ (fullwidth) looks like LA:919
PARTY_RE = re.compile(r"(LA:[0-9]{3}|URN:[0-9]{6})")
DEFAULT_VALIDITY_DAYS = 2 * 365
DEFAULT_OVERLAP_DAYS = 30
#: `keys list`, the run report and `doctor` warn this many days before a key expires unreplaced.
EXPIRY_WARNING_DAYS = 30
#: Lowest scrypt work factor accepted for key files (tests use it; people get 18).
MIN_WORK_FACTOR = 10


_PARTY_PARTS = re.compile(r"(la|urn)(:?)(.*)", re.IGNORECASE | re.DOTALL)
_PARTY_DIGITS = {"LA": (3, "a council's DfE LA code"), "URN": (6, "a school's URN")}


def _party_problem(party: object) -> tuple[str, str | None]:
    """What is wrong with a malformed party id, and the id probably meant (if there is one)."""
    form = "is not of the form LA:NNN or URN:NNNNNN"
    if not isinstance(party, str):
        return f"party id {party!r} {form}", None
    text = party.strip()
    m = _PARTY_PARTS.fullmatch(text)
    if m is None:
        return f"party id {party!r} {form}", None
    prefix, colon, digits = m.groups()
    want = prefix.upper()
    n, what = _PARTY_DIGITS[want]
    if not (digits.isascii() and digits.isdigit()):
        return f"party id {party!r}: after {want}: come {n} digits, and {digits!r} is not all digits", None
    if len(digits) != n:
        return f"party id {party!r}: {what} has {n} digits, not {len(digits)}", None
    meant = f"{want}:{digits}"
    if text != party:
        return f"party id {party!r} has spaces around it", meant
    if not colon:
        return f"party id {party!r} {form}: it needs a colon after {want}", meant
    return f"party id {party!r} must be written with an upper case {want}:", meant


def check_party(party: str) -> str:
    """A party id exactly as written on cards: LA: + 3 digits or URN: + 6 digits, upper case.
    A malformed one is a UsageError saying what is wrong, with the id probably meant."""
    if not isinstance(party, str) or not PARTY_RE.fullmatch(party):
        problem, meant = _party_problem(party)
        hint = f"did you mean {meant}?" if meant else "a council is LA:919 (its DfE LA code), a school URN:123456"
        raise UsageError(problem, code="party.invalid", hint=hint)
    return party


def role_for(party: str) -> str:
    return "local-authority" if party.startswith("LA:") else "school"


def compute_kid(alg: str, public: bytes) -> str:
    """Key id: the first 128 bits of SHA-256(alg || 0x00 || public key), hex."""
    return hashlib.sha256(alg.encode("ascii") + b"\x00" + public).hexdigest()[:32]


@dataclass(frozen=True)
class KeyInfo:
    """The public half of a key and its life: what cards carry and directories store."""

    kid: str
    use: str
    alg: str
    public: str  # encryption: an age recipient (age1.../age1pq1...); signing: base64 raw key
    not_before: str
    not_after: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None

    def public_bytes(self) -> bytes:
        if self.use == ENCRYPTION:
            r = age.parse_recipient(self.public)
            return r.public
        return base64.b64decode(self.public, validate=True)

    def recipient(self) -> age.Recipient:
        return age.parse_recipient(self.public)

    def dsse_key(self) -> dsse.PublicKey:
        return self._dsse_key

    @functools.cached_property
    def _dsse_key(self) -> dsse.PublicKey:
        """Decoded once per KeyInfo (every verification asks; a changed key is a new KeyInfo)."""
        return dsse.PublicKey(self.kid, self.alg, self.public_bytes())

    def status_at(self, t: dt.datetime) -> str:
        """One of valid, not-yet-valid, expired, revoked."""
        if self.revoked_at is not None and t >= timefmt.parse(self.revoked_at):
            return "revoked"
        if t < timefmt.parse(self.not_before):
            return "not-yet-valid"
        if self.not_after is not None and t >= timefmt.parse(self.not_after):
            return "expired"
        return "valid"

    def valid_at(self, t: dt.datetime) -> bool:
        return self.status_at(t) == "valid"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kid": self.kid, "use": self.use, "alg": self.alg, "public": self.public,
                             "not_before": self.not_before, "not_after": self.not_after}
        if self.revoked_at is not None:
            d["revoked_at"] = self.revoked_at
            d["revocation_reason"] = self.revocation_reason
        return d

    @classmethod
    def from_dict(cls, d: Any) -> KeyInfo:
        """Strict: known fields only, consistent use/alg, the key id matches the public key."""
        if not isinstance(d, dict):
            raise InvalidData("a key entry must be an object", code="key.malformed")
        required = {"kid", "use", "alg", "public", "not_before", "not_after"}
        optional = {"revoked_at", "revocation_reason"}
        if not required <= set(d) or not set(d) <= required | optional:
            raise InvalidData(f"key entry has unexpected or missing fields: {sorted(set(d) ^ required)}",
                              code="key.malformed")
        try:
            info = cls(**d)
            if (info.use == ENCRYPTION and info.alg not in ENCRYPTION_ALGS) or \
                    (info.use == SIGNING and info.alg not in SIGNING_ALGS) or info.use not in (ENCRYPTION, SIGNING):
                raise ValueError(f"unsupported key use/algorithm {info.use}/{info.alg}")
            if info.use == ENCRYPTION:
                r = age.parse_recipient(info.public)
                want = age.HybridRecipient if info.alg == ALG_HYBRID else age.X25519Recipient
                if not isinstance(r, want):
                    raise ValueError("encryption key does not match its algorithm")
            else:
                if dsse.b64(info.public_bytes()) != info.public:
                    raise ValueError("signing key is not canonical base64")
            for ts in (info.not_before, info.not_after, info.revoked_at):
                if ts is not None:
                    timefmt.parse(ts)
            if compute_kid(info.alg, info.public_bytes()) != info.kid:
                raise ValueError("key id does not match the public key")
        except (TypeError, ValueError) as exc:
            raise InvalidData(f"bad key entry: {exc}", code="key.malformed") from None
        return info


class KeySet:
    """What our keyring and a partner's card share: a list of keys, looked up by id or time."""

    keys: list[KeyInfo]

    def find_key(self, kid: str) -> KeyInfo | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def signing_publics(self, alg: str) -> list[bytes]:
        """The raw public keys of every signing key of `alg`, current or not: what a signature made
        in the past (an audit checkpoint) is checked against after a rotation."""
        return [k.public_bytes() for k in self.keys if k.use == SIGNING and k.alg == alg]

    def keys_valid_at(self, t: dt.datetime, use: str | None = None, alg: str | None = None) -> list[KeyInfo]:
        """Keys (optionally of one use and algorithm) valid at `t`, newest first."""
        ks = [k for k in self.keys
              if (use is None or k.use == use) and (alg is None or k.alg == alg) and k.valid_at(t)]
        return sorted(ks, key=lambda k: k.not_before, reverse=True)

    def superseded(self, k: KeyInfo) -> bool:
        """Another key of the same use and algorithm, not revoked, takes over when `k` ends (a rotation)."""
        if k.not_after is None:
            return False
        end = timefmt.parse(k.not_after)
        return any(o.kid != k.kid and o.use == k.use and o.alg == k.alg and o.revoked_at is None
                   and timefmt.parse(o.not_before) <= end
                   and (o.not_after is None or timefmt.parse(o.not_after) > end) for o in self.keys)

    def expiring(self, t: dt.datetime, within: dt.timedelta) -> list[KeyInfo]:
        """Keys valid at `t` that expire within `within` of it with nothing to take over from them
        (a key in a rotation's overlap is not listed: its successor outlives it). The same rule for
        our keyring (`keys list`, the run report, `doctor`) and a partner's card (`doctor`)."""
        out = [k for k in self.keys_valid_at(t)
               if k.not_after is not None and timefmt.parse(k.not_after) <= t + within and not self.superseded(k)]
        return sorted(out, key=lambda k: (k.not_after or "", k.kid))


@dataclass
class Keyring(KeySet):
    """The public record of our own party (keyring.json)."""

    party: str
    name: str
    role: str
    keys: list[KeyInfo] = field(default_factory=list)
    sftp_url: str | None = None
    host_key_fingerprints: list[str] = field(default_factory=list)
    ssh_public_key: str | None = None
    required_signature_algorithms: list[str] = field(default_factory=lambda: [dsse.ED25519])
    #: After `keys rotate --ssh`: the previous SSH public key, still on the card (and still tried
    #: by our client) until `ssh_previous_until`, so partners have time to add the new line.
    ssh_previous_public_key: str | None = None
    ssh_previous_until: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"party": self.party, "name": self.name, "role": self.role,
             "keys": [k.to_dict() for k in self.keys], "sftp_url": self.sftp_url,
             "host_key_fingerprints": list(self.host_key_fingerprints),
             "ssh_public_key": self.ssh_public_key,
             "required_signature_algorithms": list(self.required_signature_algorithms)}
        if self.ssh_previous_public_key is not None:
            d["ssh_previous_public_key"] = self.ssh_previous_public_key
            d["ssh_previous_until"] = self.ssh_previous_until
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Keyring:
        """Strict about shape and types (a keyring that fails here is damaged, not merely odd)."""
        if not isinstance(d, dict):
            raise ValueError("the keyring is not a JSON object")
        check_party(d["party"])
        for name in ("name", "role"):
            if not isinstance(d[name], str):
                raise ValueError(f"{name} must be a string")
        if not isinstance(d["keys"], list):
            raise ValueError("keys must be a list")
        for name in ("sftp_url", "ssh_public_key", "ssh_previous_public_key", "ssh_previous_until"):
            if not isinstance(d.get(name), str | None):
                raise ValueError(f"{name} must be a string or null")
        for name in ("host_key_fingerprints", "required_signature_algorithms"):
            if not isinstance(d.get(name) or [], list) or not all(isinstance(x, str) for x in d.get(name) or []):
                raise ValueError(f"{name} must be a list of strings")
        return cls(party=d["party"], name=d["name"], role=d["role"],
                   keys=[KeyInfo.from_dict(k) for k in d["keys"]], sftp_url=d.get("sftp_url"),
                   host_key_fingerprints=list(d.get("host_key_fingerprints") or []),
                   ssh_public_key=d.get("ssh_public_key"),
                   required_signature_algorithms=list(d.get("required_signature_algorithms") or [dsse.ED25519]),
                   ssh_previous_public_key=d.get("ssh_previous_public_key"),
                   ssh_previous_until=d.get("ssh_previous_until"))


SFTP_URL_RE = re.compile(r"sftp://[A-Za-z0-9._-]+@[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?")


def check_sftp_url(url: str | None) -> str | None:
    """A card's SFTP URL: the strict shape cards allow, and one the transport can actually use."""
    if url is not None and not SFTP_URL_RE.fullmatch(url):
        raise UsageError(f"SFTP URL {url!r} is not of the form sftp://user@host:port/path", code="sftp-url.invalid",
                         hint="for example sftp://la919@sftp.example.org:22/inbox")
    if url is not None:
        parse_url(url)
    return url


def check_pins_follow(old_url: str | None, new_url: str, pins: list[str]) -> None:
    """Refuse to keep `pins` (the old server's host-key fingerprints) for `new_url` on another host
    or port: the card would pin a key the new server does not have, so every partner's delivery is
    refused there (or, were the old key ever on the new address, trusted to the wrong server). A
    new path or user on the same server keeps its host key, so its pins are kept."""
    if not old_url or not pins:
        return
    old, new = parse_url(old_url), parse_url(new_url)
    if (old.host, old.port) == (new.host, new.port):
        return
    raise UsageError(f"our SFTP URL moves from {old.host}:{old.port} to {new.host}:{new.port}, but no host-key "
                     f"fingerprint was given for the new server: the card would go on pinning the old server's "
                     f"({', '.join(pins)}), which partners would refuse at the new one",
                     code="sftp-url.host-key-needed",
                     hint=f"pass --host-key-fingerprint SHA256:... with the URL, once for each host key of "
                          f"{new.host}:{new.port} (on that server, `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`; "
                          "for `laxchange serve-sftp`, the fingerprint it prints at start); nothing was changed")


# --- the plaintext of a private key file ---------------------------------------------------------

#: The first bytes of every key file's plaintext: our metadata, as a comment line of an age identity file.
KEY_FILE_HEADER = b"# laxchange private key: "
_KEY_FILE_PUBLIC = b"# public key: "


def key_file_text(info: KeyInfo, secret: bytes) -> bytes:
    """The plaintext of `info`'s private key file: standard first, ours beside it.

        # laxchange private key: {"alg":"mlkem768x25519","kid":"8df8…","use":"encryption"}
        # public key: age1pq1…
        AGE-SECRET-KEY-PQ-1…

    An encryption key is an age identity file as `age-keygen` writes one (comment lines, then
    `AGE-SECRET-KEY-1…` for X25519 or `AGE-SECRET-KEY-PQ-1…` for ML-KEM-768+X25519), so `age -d -i`
    and every age implementation take it as it is. A signing key has the same two comment lines,
    then the key as PKCS#8 PEM (Ed25519: `openssl pkey` reads it; ML-DSA-65: the RFC 9881 seed form)."""
    head = (KEY_FILE_HEADER + jsonio.dumps_canonical({"alg": info.alg, "kid": info.kid, "use": info.use}) + b"\n"
            + _KEY_FILE_PUBLIC + info.public.encode("ascii") + b"\n")
    if info.use == ENCRYPTION:
        ident = age.HybridIdentity(secret) if info.alg == ALG_HYBRID else age.X25519Identity(secret)
        return head + str(ident).encode("ascii") + b"\n"
    key = ed25519.Ed25519PrivateKey.from_private_bytes(secret) if info.alg == dsse.ED25519 \
        else mldsa.MLDSA65PrivateKey.from_seed_bytes(secret)
    return head + _pkcs8(key)


def _pkcs8(key: ed25519.Ed25519PrivateKey | mldsa.MLDSA65PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def read_key_file_text(plain: bytes, info: KeyInfo) -> tuple[bytes, bool]:
    """(the raw secret, is it the legacy JSON of releases before issue 12) from a key file's plaintext,
    which must be exactly what `key_file_text` writes for `info` (or that JSON, naming `info`).
    Anything else raises ValueError saying what is wrong."""
    if plain.startswith(b"{"):  # {"alg", "kid", "secret"}: the raw secret, base64
        try:
            d = jsonio.loads_strict(plain, source="key file")
            secret = base64.b64decode(d["secret"], validate=True) if isinstance(d, dict) else b""
        except (InvalidData, KeyError, TypeError, binascii.Error):
            raise ValueError("its JSON cannot be read") from None
        if set(d) != {"alg", "kid", "secret"} or (d["kid"], d["alg"]) != (info.kid, info.alg):
            raise ValueError(f"it does not hold key {info.kid}")
        return secret, True
    lines = plain.split(b"\n", 2)
    if len(lines) != 3 or not lines[0].startswith(KEY_FILE_HEADER):
        raise ValueError("it does not start with the laxchange key comment")
    try:
        meta = jsonio.loads_strict(lines[0][len(KEY_FILE_HEADER):], source="key file comment")
    except InvalidData:
        raise ValueError("its first comment line is not the key's metadata") from None
    if meta != {"alg": info.alg, "kid": info.kid, "use": info.use} \
            or lines[1] != _KEY_FILE_PUBLIC + info.public.encode("ascii"):
        raise ValueError(f"it does not hold key {info.kid}")
    body = lines[2]
    if info.use == ENCRYPTION:
        text = body.decode("ascii", "replace")
        if not text.endswith("\n") or "\n" in text[:-1]:
            raise ValueError("its age identity is not one line")
        ident = age.parse_identity(text[:-1])  # ValueError if it is not one
        want = age.HybridIdentity if info.alg == ALG_HYBRID else age.X25519Identity
        if not isinstance(ident, want) or str(ident.recipient()) != info.public:
            raise ValueError(f"its age identity is not the private half of key {info.kid}")
        return (ident.seed if isinstance(ident, age.HybridIdentity) else ident.secret), False
    try:
        key = serialization.load_pem_private_key(body, password=None)
    except (ValueError, TypeError):
        raise ValueError("its PKCS#8 block cannot be read") from None
    want_key = ed25519.Ed25519PrivateKey if info.alg == dsse.ED25519 else mldsa.MLDSA65PrivateKey
    if not isinstance(key, want_key) or _pkcs8(key) != body \
            or dsse.b64(key.public_key().public_bytes_raw()) != info.public:
        raise ValueError(f"its PKCS#8 key is not the private half of key {info.kid}")
    return key.private_bytes_raw(), False


def _rewrite(path: Path, data: bytes) -> None:
    """Replace a private key file atomically (temporary file, fsync, rename, fsync of the folder)."""
    jsonio.write_atomic(path, data, mode=0o600)


def _check_private_file(path: Path) -> None:
    check_private_file(path, what="private key file", kind="key",
                       missing_hint="restore it from backup, or rotate keys")


class KeyStore:
    """Our own keys in `home`. Time, passphrases and the scrypt work factor are injected."""

    def __init__(
        self,
        home: Home,
        *,
        passphrase: PassphraseSource | None = None,
        clock: Clock | None = None,
        work_factor: int = age.recipients.DEFAULT_SCRYPT_WORK_FACTOR,
        ssh_kdf_rounds: int | None = None,
    ) -> None:
        if not MIN_WORK_FACTOR <= work_factor <= age.recipients.MAX_SCRYPT_WORK_FACTOR:
            raise UsageError(f"scrypt work factor must be between {MIN_WORK_FACTOR} and 22", code="kdf.work-factor")
        self.home = home
        self.passphrase = passphrase or default_passphrase_source()
        self.clock = clock or SystemClock()
        self.work_factor = work_factor
        #: bcrypt rounds for the OpenSSH key; None means cryptography's default (tests lower it).
        self.ssh_kdf_rounds = ssh_kdf_rounds
        self._pass: bytes | None = None
        self._secrets: dict[str, bytes] = {}
        self._signer_cache: dict[str, dsse.Signer] = {}
        #: Decryption identities by key id, each with its key expanded once (memory only, like
        #: `_secrets`; dropped with the key). Always reached through the keyring (`identity`).
        self._identities: dict[str, age.Identity] = {}
        self._ring: Keyring | None = None

    # --- storage -------------------------------------------------------------------------

    @property
    def ring_path(self) -> Path:
        return self.home.keyring

    @property
    def archive(self) -> Path:
        return self.home.keys / "archive"

    def exists(self) -> bool:
        return self.home.initialised()

    @contextmanager
    def _exclusive(self, *, held: bool = False) -> Iterator[None]:
        """Hold the home's run lock while our keys change (rotate, revoke, prune, a new passphrase),
        so that they never race the nightly run, which signs with them and prunes them, or each
        other: a second one is refused at once (`run.locked`, exit 5), as a second run is. The
        keyring is read again under the lock. A home without keys is refused before anything is
        created."""
        self.ring()
        if held:
            yield
            return
        with RunLock(self.home.run_lock, clock=self.clock):
            self._ring = None
            yield

    def ring(self) -> Keyring:
        if self._ring is None:
            self.home.require("initialised")
            self._ring = load_home_file(self.ring_path, Keyring.from_dict, what="keyring")
        return self._ring

    def _save(self, ring: Keyring) -> None:
        jsonio.write_atomic(self.ring_path, jsonio.dumps_pretty(ring.to_dict()).encode("utf-8"))
        self._ring = ring

    def _get_pass(self, purpose: str, confirm: bool = False) -> bytes:
        if self._pass is None:
            self._pass = self.passphrase(purpose, confirm=confirm)
        return self._pass

    def _write_private(self, info: KeyInfo, secret: bytes, directory: Path | None = None) -> None:
        plain = key_file_text(info, secret)
        recip = age.ScryptRecipient(self._get_pass("protect the new private keys", confirm=True), self.work_factor)
        d = directory or self.home.keys
        d.mkdir(mode=0o700, exist_ok=True)
        jsonio.write_atomic(d / f"{info.kid}.age", age.encrypt_bytes([recip], plain), mode=0o600)

    def _private_path(self, kid: str) -> Path:
        for d in (self.home.keys, self.archive):
            p = d / f"{kid}.age"
            if p.exists():
                return p
        raise ConfigError(f"private key {kid} is not in {self.home.keys}", code="key.missing",
                          hint="restore it from backup; `laxchange keys list` shows the key ids")

    @property
    def passphrase_marker(self) -> Path:
        """Present while `change_passphrase` runs: some files may be under the old, some the new one."""
        return self.home.keys / "passphrase-change.pending"

    def _wrong_pass_hint(self) -> str:
        if self.passphrase_marker.exists():
            return ("a `laxchange keys passphrase` run did not finish, so some key files are under the old "
                    "passphrase and some under the new: run it again with the old and the new passphrase")
        return wrong_passphrase_hint(self.passphrase)

    def _secret(self, info: KeyInfo) -> bytes:
        if info.kid in self._secrets:
            return self._secrets[info.kid]
        path = self._private_path(info.kid)
        _check_private_file(path)
        try:
            unlock = age.ScryptIdentity(self._get_pass("unlock the private keys"))
            plain = age.decrypt_bytes([unlock], path.read_bytes())
        except age.NoMatchError:
            self._pass = None
            raise ConfigError(f"wrong passphrase for private key {path.name}", code="passphrase.wrong",
                              hint=self._wrong_pass_hint()) from None
        except age.AgeError as exc:
            raise ConfigError(f"private key file {path} is damaged ({exc})", code="key.damaged",
                              hint="restore it from backup") from None
        try:
            secret, legacy = read_key_file_text(plain, info)
        except ValueError as exc:
            raise ConfigError(f"private key file {path} is damaged: {exc}", code="key.damaged",
                              hint="restore it from backup") from None
        self._secrets[info.kid] = secret
        if legacy:
            self._migrate_key_files()
        return secret

    @property
    def key_backup(self) -> Path:
        """Key files as releases before issue 12 wrote them, kept by the migration (`_migrate_key_files`)."""
        return self.home.keys / "pre-identity-backup"

    def _key_files(self) -> list[Path]:
        """The private key files in use: keys/*.age and keys/archive/*.age (not the migration's backups)."""
        files = sorted(self.archive.glob("*.age")) if self.archive.is_dir() else []
        return files + sorted(self.home.keys.glob("*.age"))

    def _migrate_key_files(self) -> list[Path]:
        """Rewrite every key file whose plaintext is still the JSON of releases before issue 12 as a
        standard key (`key_file_text`), under the same passphrase; returns the files rewritten.

        Run at the first unlock that meets such a file, so a home upgrades on first use. Each file
        is first copied as it is to `pre-identity-backup/<kid>.age` (0600; an existing backup is
        kept), then replaced atomically, so a crash at any point leaves the old file or the new
        one, and the backup. A file the passphrase does not open (an interrupted `keys passphrase`)
        is left for a later run, as is one that cannot be written now: the reader accepts both forms."""
        secret = self._get_pass("unlock the private keys")
        unlock = age.ScryptIdentity(secret)
        done = []
        for path in self._key_files():
            info = self.ring().find_key(path.stem)
            if info is None:
                continue
            try:
                _check_private_file(path)  # refused when that key is used; not a reason to stop this one
            except ConfigError:
                continue
            data = path.read_bytes()
            try:
                plain = age.decrypt_bytes([unlock], data)
            except age.AgeError:
                continue
            if not plain.startswith(b"{"):
                continue
            try:
                raw, _ = read_key_file_text(plain, info)
            except ValueError:
                continue  # damaged: `_secret` says so when that key is used
            backup = self.key_backup / path.name
            try:
                if not backup.exists():
                    self.key_backup.mkdir(mode=0o700, exist_ok=True)
                    jsonio.write_atomic(backup, data, mode=0o600)
                _rewrite(path, age.encrypt_bytes([age.ScryptRecipient(secret, self.work_factor)],
                                                 key_file_text(info, raw)))
            except OSError:
                continue  # e.g. a full disk: the old file still works, and the next unlock tries again
            done.append(path)
        return done

    # --- generation ----------------------------------------------------------------------

    def _new_key(self, use: str, alg: str, not_before: dt.datetime, not_after: dt.datetime | None) -> KeyInfo:
        nb, na = timefmt.fmt(not_before), (timefmt.fmt(not_after) if not_after else None)
        if use == ENCRYPTION:
            ident: Any = age.HybridIdentity.generate() if alg == ALG_HYBRID else age.X25519Identity.generate()
            public_text = str(ident.recipient())
            secret = ident.seed if alg == ALG_HYBRID else ident.secret
            info = KeyInfo(compute_kid(alg, ident.recipient().public), use, alg, public_text, nb, na)
        else:
            if alg == dsse.ED25519:
                sk: Any = ed25519.Ed25519PrivateKey.generate()
                secret = sk.private_bytes_raw()
            else:
                seed = os.urandom(32)
                sk = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)
                secret = seed
            pub = sk.public_key().public_bytes_raw()
            info = KeyInfo(compute_kid(alg, pub), use, alg, dsse.b64(pub), nb, na)
        self._write_private(info, secret)
        self._secrets[info.kid] = secret
        return info

    def init(
        self,
        party: str,
        name: str,
        *,
        encryption_alg: str = ALG_HYBRID,
        mldsa: bool = False,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
        sftp_url: str | None = None,
        host_key_fingerprints: list[str] | tuple[str, ...] = (),
        role: str | None = None,
        throwaway: bool = False,
    ) -> Keyring:
        """Make the home's first keys. `throwaway`: a demo's home, whose passphrase is published
        on purpose (`passphrase.DEMO_PASSPHRASE`): the new passphrase is not judged. Never for a
        home that will hold a real party's keys."""
        check_party(party)
        if not name or not name.strip():
            raise UsageError("a party name is required", code="name.missing", hint='--name "Example Council"')
        if encryption_alg not in ENCRYPTION_ALGS:
            raise UsageError(f"unknown encryption algorithm {encryption_alg}", code="alg.unknown")
        check_sftp_url(sftp_url)
        fprs = [check_fingerprint(f) for f in host_key_fingerprints]
        if self.exists():
            raise ConfigError(f"{self.home.root} is already initialised for {self.ring().party}", code="home.exists",
                              hint="use `laxchange keys rotate` to replace keys, or choose another --home")
        try:  # the passphrase every key file will be under: judged before anything is written
            secret = self._get_pass("protect the new private keys", confirm=True)
            if not throwaway:
                check_new_passphrase(secret, about=[party, name], source=source_of(self.passphrase))
        except UsageError:
            self._pass = None
            raise
        self.home.ensure()
        now = self.clock.now()
        end = now + dt.timedelta(days=validity_days)
        keys = [self._new_key(ENCRYPTION, encryption_alg, now, end), self._new_key(SIGNING, dsse.ED25519, now, end)]
        algs = [dsse.ED25519]
        if mldsa:
            keys.append(self._new_key(SIGNING, dsse.MLDSA65, now, end))
            algs.append(dsse.MLDSA65)
        ssh_line = self._new_ssh_identity(party)
        ring = Keyring(party, name.strip(), role or role_for(party), keys, sftp_url, fprs, ssh_line, algs)
        self._save(ring)
        return ring

    def _new_ssh_identity(self, party: str) -> str:
        secret = self._get_pass("protect the new private keys", confirm=True)
        return create_ssh_identity(self.home.ssh_client_key, secret, f"laxchange-{party.replace(':', '-')}",
                                   kdf_rounds=self.ssh_kdf_rounds, overwrite=True)

    def set_endpoint(self, sftp_url: str | None, host_key_fingerprints: list[str] | None) -> Keyring:
        """Our drop folder on the card: a new URL, new host-key pins, or both. Pins given as None are
        kept, but only while the server stays the same (`check_pins_follow`)."""
        ring = self.ring()
        if sftp_url is not None:
            check_sftp_url(sftp_url)
            if host_key_fingerprints is None:
                check_pins_follow(ring.sftp_url, sftp_url, ring.host_key_fingerprints)
            ring.sftp_url = sftp_url
        if host_key_fingerprints is not None:
            ring.host_key_fingerprints = [check_fingerprint(f) for f in host_key_fingerprints]
        self._save(ring)
        return ring

    def rotate(self, *, overlap_days: int = DEFAULT_OVERLAP_DAYS, encryption_alg: str | None = None,
               validity_days: int = DEFAULT_VALIDITY_DAYS) -> list[KeyInfo]:
        """New keys for every use/algorithm; the old ones stay valid `overlap_days` more, then retire.

        Old decryption keys move to archive/ (they keep opening old packages); old signing keys
        stay for the overlap (to co-sign the card); `prune` destroys them once it has ended."""
        with self._exclusive():
            ring = self.ring()
            now = self.clock.now()
            end = now + dt.timedelta(days=validity_days)
            overlap_end = now + dt.timedelta(days=overlap_days)
            new: list[KeyInfo] = []
            current_enc = ring.keys_valid_at(now, ENCRYPTION)
            enc_alg = encryption_alg or (current_enc[0].alg if current_enc else ALG_HYBRID)
            if enc_alg not in ENCRYPTION_ALGS:
                raise UsageError(f"unknown encryption algorithm {enc_alg}", code="alg.unknown")
            new.append(self._new_key(ENCRYPTION, enc_alg, now, end))
            for alg in ring.required_signature_algorithms:
                new.append(self._new_key(SIGNING, alg, now, end))
            updated = []
            for k in ring.keys:
                if k.revoked_at is None and k.valid_at(now):
                    na = k.not_after
                    if na is None or timefmt.parse(na) > overlap_end:
                        k = replace(k, not_after=timefmt.fmt(overlap_end))
                    if k.use == ENCRYPTION:
                        self._archive(k.kid)
                updated.append(k)
            ring.keys = updated + new
            self._save(ring)
            return new

    def _archive(self, kid: str) -> None:
        """Keep a retired private decryption key: it still opens old packages.

        Signing keys are never archived: a retired signing key has no use left but forging
        back-dated packages. It stays where it is until `prune` destroys it, explicitly and with
        an audit entry, once it has been superseded and its overlap is over."""
        info = self.ring().find_key(kid)
        if info is not None and info.use == SIGNING:
            return
        src = self.home.keys / f"{kid}.age"
        if src.exists():
            self.archive.mkdir(mode=0o700, exist_ok=True)
            os.replace(src, self.archive / src.name)

    def _private_where(self, kid: str) -> str | None:
        """"present" (keys/), "archived" (keys/archive/), or None when there is no private file."""
        if (self.home.keys / f"{kid}.age").exists():
            return "present"
        if (self.archive / f"{kid}.age").exists():
            return "archived"
        return None

    def key_state(self, k: KeyInfo, at: dt.datetime | None = None) -> dict[str, str]:
        """The true state of one of our keys: its `status` and where its `private` half is.

        status: valid, not-yet-valid, expired (past not_after and never replaced: rotate),
        retired (replaced by a rotation; a decryption key is kept in the archive, a signing key
        destroyed), retired-awaiting-prune (a retired or revoked signing key whose private file
        `keys prune` will destroy), revoked, missing-private-file (a key we still need has no
        private file: restore it from backup).
        private: present, archived, destroyed (a retired signing key, as intended) or missing.
        """
        t = at or self.clock.now()
        ring = self.ring()
        where = self._private_where(k.kid)
        base = k.status_at(t)
        retired = base == "revoked" or (base == "expired" and ring.superseded(k))
        if where is None:
            private = "destroyed" if k.use == SIGNING and retired else "missing"
        else:
            private = where
        if base == "revoked":
            status = "revoked"
        elif retired:
            status = "retired-awaiting-prune" if k.use == SIGNING and where is not None else "retired"
        else:
            status = base
        if private == "missing" and (k.use == ENCRYPTION or base in ("valid", "not-yet-valid")):
            status = "missing-private-file"
        return {"status": status, "private": private}

    def key_states(self, at: dt.datetime | None = None) -> dict[str, dict[str, str]]:
        """`key_state` of every key in the keyring, by key id."""
        return {k.kid: self.key_state(k, at) for k in self.ring().keys}

    def expiring(self, within: dt.timedelta = dt.timedelta(days=EXPIRY_WARNING_DAYS),
                 at: dt.datetime | None = None) -> list[KeyInfo]:
        """Keys valid now that expire within `within` with nothing to take over from them.

        A key in a rotation's overlap is not listed (its successor outlives it). For the run
        report and `doctor`: each one means "run `laxchange keys rotate` before not_after"."""
        return self.ring().expiring(at or self.clock.now(), within)

    def prunable(self, at: dt.datetime | None = None) -> list[dict[str, Any]]:
        """What `prune` would destroy now: private files of signing keys that are revoked, or were
        replaced by a rotation and are past the overlap (not_after). An expired key nobody
        replaced is never pruned: that is a missed rotation, not a retirement."""
        t = at or self.clock.now()
        out: list[dict[str, Any]] = []
        for k in self.ring().keys:
            if k.use != SIGNING or self._private_where(k.kid) is None:
                continue
            if self.key_state(k, t)["status"] in ("retired-awaiting-prune", "revoked"):
                out.append({"kid": k.kid, "use": k.use, "alg": k.alg, "not_after": k.not_after,
                            "reason": "revoked" if k.revoked_at is not None else "retired"})
        ring = self.ring()
        if ring.ssh_previous_public_key and ring.ssh_previous_until and timefmt.parse(ring.ssh_previous_until) <= t:
            out.append({"kid": ssh_identity_fingerprint(ring.ssh_previous_public_key), "use": SSH,
                        "alg": ring.ssh_previous_public_key.split()[0], "not_after": ring.ssh_previous_until,
                        "reason": "retired"})
        return out

    def prune(self, at: dt.datetime | None = None, record: Callable[[dict[str, Any]], None] | None = None, *,
              run_lock_held: bool = False) -> list[dict[str, Any]]:
        """Destroy the private halves listed by `prunable` and return them.

        `record(entry)` is called before each file is deleted (the Party writes the audit entry
        there); if it raises, that key and the rest are left as they are. `run_lock_held`: the
        caller (the nightly run) holds the home's run lock already."""
        with self._exclusive(held=run_lock_held):
            gone = []
            for entry in self.prunable(at):
                if record is not None:
                    record(entry)
                if entry["use"] == SSH:
                    self._destroy_previous_ssh()
                else:
                    self._destroy(entry["kid"])
                gone.append(entry)
            return gone

    def _destroy_previous_ssh(self) -> None:
        prev = self.previous_ssh_key
        prev.unlink(missing_ok=True)
        prev.with_name(prev.name + ".pub").unlink(missing_ok=True)
        ring = self.ring()
        ring.ssh_previous_public_key = ring.ssh_previous_until = None
        self._save(ring)

    def _destroy(self, kid: str) -> None:
        for d in (self.home.keys, self.archive, self.key_backup):
            (d / f"{kid}.age").unlink(missing_ok=True)
        self._secrets.pop(kid, None)
        self._signer_cache.pop(kid, None)
        self._identities.pop(kid, None)

    def revoke(self, kid: str, reason: str, at: dt.datetime | None = None) -> KeyInfo:
        if not reason or not reason.strip():
            raise UsageError("a revocation reason is required", code="reason.missing",
                             hint='--reason "key-compromise" or "superseded"')
        with self._exclusive():
            ring = self.ring()
            info = ring.find_key(kid)
            if info is None:
                ssh = {ssh_identity_fingerprint(line) for line in (ring.ssh_public_key, ring.ssh_previous_public_key)
                       if line}
                if kid in ssh:  # listed by `keys list`, but an SSH key is replaced, not revoked
                    raise UsageError(f"{kid} is our SSH client key, which is replaced rather than revoked",
                                     code="key.unknown",
                                     hint="`laxchange keys rotate --ssh --overlap-days 0` replaces it at once "
                                          "(and destroys a previous SSH key still kept); send partners the new "
                                          "card, and ask them to remove the old line from authorized_keys")
                raise UsageError(f"no key with id {kid}", code="key.unknown",
                                 hint="`laxchange keys list` shows key ids")
            if info.revoked_at is not None:
                raise UsageError(f"key {kid} was already revoked at {info.revoked_at}", code="key.revoked")
            new = replace(info, revoked_at=timefmt.fmt(at or self.clock.now()), revocation_reason=reason.strip())
            ring.keys = [new if k.kid == kid else k for k in ring.keys]
            self._archive(kid)
            self._save(ring)
            return new

    # --- the SSH client key -----------------------------------------------------------------

    @property
    def previous_ssh_key(self) -> Path:
        """The SSH client key before the last `rotate_ssh`, kept (and tried) during its overlap."""
        return self.home.ssh_client_key.with_name(self.home.ssh_client_key.name + ".previous")

    def rotate_ssh(self, *, overlap_days: int = DEFAULT_OVERLAP_DAYS) -> str:
        """A new SSH client key; the old one stays for `overlap_days` and is tried when a server
        refuses the new one. Returns the new public line (for partners' authorized_keys). During
        an earlier rotation's overlap only `overlap_days=0` (an incident: a key lost or stolen) is
        allowed, and it destroys the earlier previous key first.

        Until the overlap ends the card carries both public keys (`ssh_previous`), so a partner
        adds the new line beside the old one; `prune` destroys the old key after it. The order
        keeps a working key on disk at every step: the new key is written beside the current
        one, the current one copied to `.previous`, the keyring saved, and only then is the new
        key renamed into place."""
        with self._exclusive():
            ring = self.ring()
            current = self.home.ssh_client_key
            prev = self.previous_ssh_key
            if (ring.ssh_previous_public_key is not None or prev.exists()) and overlap_days > 0:
                until = ring.ssh_previous_until or "?"
                raise ConfigError(f"the previous SSH client key is kept until {until} (its overlap)",
                                  code="ssh-key.overlap",
                                  hint=f"run `laxchange keys prune` after {until} (it destroys the previous key), "
                                       "then rotate again; if a key is lost or stolen, `laxchange keys rotate --ssh "
                                       "--overlap-days 0` replaces it now and destroys the previous one")
            check_private_file(current, what="SSH client key", kind="ssh-key",
                               missing_hint="restore it from backup, or run `laxchange endpoints ssh-key`")
            secret = self._get_pass("unlock the private keys")
            if reencrypt_ssh_identity(current.read_bytes(), secret, secret, kdf_rounds=self.ssh_kdf_rounds) is None:
                self._pass = None
                raise ConfigError(f"wrong passphrase for the SSH client key {current}", code="passphrase.wrong",
                                  hint=self._wrong_pass_hint())
            if ring.ssh_previous_public_key is not None or prev.exists():
                # an incident in an overlap (`--overlap-days 0`): no key that may be the lost one is kept
                self._destroy_previous_ssh()
                ring = self.ring()
            now = self.clock.now()
            nxt = current.with_name(current.name + ".next")
            line = create_ssh_identity(nxt, secret, f"laxchange-{ring.party.replace(':', '-')}",
                                       kdf_rounds=self.ssh_kdf_rounds, overwrite=True)
            jsonio.write_atomic(prev, current.read_bytes(), mode=0o600)
            old_pub = current.with_name(current.name + ".pub")
            if old_pub.exists():
                jsonio.write_atomic(prev.with_name(prev.name + ".pub"), old_pub.read_bytes(), mode=0o644)
            ring.ssh_previous_public_key = ring.ssh_public_key
            ring.ssh_previous_until = timefmt.fmt(now + dt.timedelta(days=overlap_days))
            ring.ssh_public_key = line
            self._save(ring)
            os.replace(nxt.with_name(nxt.name + ".pub"), old_pub)
            os.replace(nxt, current)
            return line

    # --- the passphrase ------------------------------------------------------------------

    def ssh_key_states(self, at: dt.datetime | None = None) -> list[dict[str, Any]]:
        """The SSH client key (and the previous one during an overlap) as `keys list` rows:
        `kid` its SHA256 fingerprint, `use` ssh, `status` valid / previous (still offered to servers
        until `not_after`) / retired-awaiting-prune (past it: `keys prune`) / missing-private-file."""
        t = at or self.clock.now()
        ring = self.ring()
        rows: list[dict[str, Any]] = []
        for line, path, until in ((ring.ssh_public_key, self.home.ssh_client_key, None),
                                  (ring.ssh_previous_public_key, self.previous_ssh_key, ring.ssh_previous_until)):
            if not line:
                continue
            present = path.exists()
            if not present:
                status = "missing-private-file" if until is None else "retired"
            elif until is None:
                status = "valid"
            elif timefmt.parse(until) > t:
                status = "previous"
            else:
                status = "retired-awaiting-prune"
            rows.append({"kid": ssh_identity_fingerprint(line), "use": SSH, "alg": line.split()[0],
                         "public": line, "not_before": None, "not_after": until, "status": status,
                         "private": "present" if present else ("missing" if until is None else "destroyed")})
        return rows

    def _check_new_passphrase(self, new: bytes, source: str | None) -> None:
        ring = self.ring()
        check_new_passphrase(new, about=[ring.party, ring.name], source=source)

    def private_files(self) -> list[Path]:
        """Every file the passphrase protects: the migration's backups, age key files in keys/ and
        keys/archive/, the SSH key(s)."""
        files = sorted(self.key_backup.glob("*.age")) if self.key_backup.is_dir() else []
        files += self._key_files()
        files += [p for p in (self.previous_ssh_key, self.home.ssh_client_key) if p.exists()]
        return files

    def change_passphrase(self, new: bytes, *, old: bytes | None = None, source: str | None = None) -> dict[str, int]:
        """Re-encrypt every private key file under `new`, after checking `old` opens all of them.

        Order, so that a crash at any point leaves every file openable with the old or the new
        passphrase: (1) every file is read and opened first, with the old passphrase or, for a
        file an interrupted run already did, the new one; any other file stops the change before
        anything is written. (2) The marker `keys/passphrase-change.pending` is written. (3) Each
        file still under the old passphrase is replaced atomically (temporary file, fsync,
        rename, fsync of the folder): archive first, then the active keys, the SSH keys last.
        (4) The marker is removed. Running it again after a crash finishes the job.
        Returns {"files": all, "changed": rewritten now}. `source`: where `new` was read, for the
        message refusing one too easy to guess (`check_new_passphrase`).
        """
        if not new:
            raise UsageError("the new passphrase is empty", code="passphrase.empty",
                             hint="choose a non-empty passphrase")
        judged = not self.passphrase_marker.exists()
        if judged:  # at once, before the old one is asked for
            self._check_new_passphrase(new, source)
        old = old if old is not None else self._get_pass("unlock the private keys")
        if new == old:
            raise UsageError("the new passphrase is the same as the old one", code="passphrase.unchanged",
                             hint="choose a different passphrase")
        with self._exclusive():
            plan: list[tuple[Path, bytes]] = []
            finishing = False
            files = self.private_files()
            for path in files:
                _check_private_file(path)
                data = path.read_bytes()
                rewritten = self._reencrypt(path, data, old, new)
                if rewritten is None:
                    if self._reencrypt(path, data, new, new) is None:
                        self._pass = None
                        raise ConfigError(f"the passphrase does not open {path.relative_to(self.home.root)}; "
                                          "nothing was changed", code="passphrase.wrong", hint=self._wrong_pass_hint())
                    finishing = True
                    continue  # already under the new passphrase (an interrupted run)
                plan.append((path, rewritten))
            if not finishing and not judged:  # a change not begun yet after all: it is chosen now
                self._check_new_passphrase(new, source)
            if plan:
                jsonio.write_atomic(self.passphrase_marker,
                                    jsonio.dumps_pretty({"started": timefmt.fmt(self.clock.now())}).encode("utf-8"))
            for path, data in plan:
                _rewrite(path, data)
            self.passphrase_marker.unlink(missing_ok=True)
            self._pass = new
            return {"files": len(files), "changed": len(plan)}

    def _reencrypt(self, path: Path, data: bytes, old: bytes, new: bytes) -> bytes | None:
        """`data` (the file at `path`) encrypted under `new`, or None if `old` does not open it."""
        if path.suffix == ".age":
            try:
                plain = age.decrypt_bytes([age.ScryptIdentity(old)], data)
            except age.NoMatchError:
                return None
            except age.AgeError as exc:
                raise ConfigError(f"private key file {path} is damaged ({exc})", code="key.damaged",
                                  hint="restore it from backup; nothing was changed") from None
            return age.encrypt_bytes([age.ScryptRecipient(new, self.work_factor)], plain)
        try:
            return reencrypt_ssh_identity(data, old, new, kdf_rounds=self.ssh_kdf_rounds)
        except ValueError as exc:
            raise ConfigError(f"cannot read SSH key {path}: {exc}", code="ssh-key.invalid",
                              hint="restore it from backup; nothing was changed") from None

    # --- use -----------------------------------------------------------------------------

    def _signer(self, info: KeyInfo) -> dsse.Signer:
        cached = self._signer_cache.get(info.kid)
        if cached is not None:
            return cached
        secret = self._secret(info)
        signer: dsse.Signer
        if info.alg == dsse.ED25519:
            signer = dsse.Ed25519Signer(info.kid, ed25519.Ed25519PrivateKey.from_private_bytes(secret))
        else:
            signer = dsse.MLDSA65Signer(info.kid, mldsa.MLDSA65PrivateKey.from_seed_bytes(secret))
        self._signer_cache[info.kid] = signer
        return signer

    def signers(self, at: dt.datetime | None = None) -> list[dsse.Signer]:
        """One signer per required algorithm: the oldest key valid at `at` (default now). In a
        rotation's overlap that is the key being replaced, which every partner holds: one that has
        not added our new card yet still verifies what we send (docs/operators.md, "Rotating keys"),
        and the new key takes over when the overlap ends. A revoked key is never valid, so after a
        compromise (revoke, then rotate) the new key signs at once."""
        ring = self.ring()
        t = at or self.clock.now()
        out: list[dsse.Signer] = []
        for alg in ring.required_signature_algorithms:
            ks = ring.keys_valid_at(t, SIGNING, alg)
            if not ks:
                raise ConfigError(f"no valid {alg} signing key for {ring.party} at {timefmt.fmt(t)}",
                                  code="key.no-signing-key", hint="run `laxchange keys rotate` to make new keys")
            out.append(self._signer(ks[-1]))
        return out

    def is_unlocked(self, kid: str) -> bool:
        """Is our encryption key `kid` unlocked in this process already, so that `identity(kid)`
        asks for no passphrase?"""
        return kid in self._identities or kid in self._secrets

    def identity(self, kid: str) -> age.Identity:
        """The decryption identity for our encryption key `kid` (active or archived)."""
        info = self.ring().find_key(kid)  # the keyring first: a key it no longer holds is never served
        if info is None or info.use != ENCRYPTION:
            raise KeyError(kid)
        ident = self._identities.get(kid)
        if ident is None:
            secret = self._secret(info)
            ident = age.HybridIdentity(secret) if info.alg == ALG_HYBRID else age.X25519Identity(secret)
            self._identities[kid] = ident
        return ident

    def card_signers(self) -> list[dsse.Signer]:
        """Every signing key valid now: during an overlap the card carries old and new signatures."""
        ring = self.ring()
        out = [self._signer(info) for info in ring.keys_valid_at(self.clock.now(), SIGNING)]
        if not out:
            raise ConfigError("no valid signing key to sign the card", code="key.no-signing-key",
                              hint="run `laxchange keys rotate`")
        return out
