"""Servers that still accept only our previous SSH key, during the overlap of `keys rotate --ssh`.

Through the overlap our client offers the new key first and the previous one when a server
refuses it (docs/transport.md, "Rotating the SSH client key"), so a partner that has not yet
added our new key line goes on working, silently, until `keys prune` destroys the previous key
at the end of the overlap and every connection to it fails at once. So the nightly run says so,
per party it logged in to (`RunReport.ssh_previous_key_only`, a warning that does not change the
exit code: the connection works), and keeps a note of it in `HOME/cache/ssh-logins.json` for
`laxchange doctor`, which never logs in to partners' servers itself.

The note holds party ids, the time of the login and the previous key's fingerprint (so a note
from an older rotation is never read as this one's): no personal data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from laxchange._util import jsonio, timefmt
from laxchange.errors import LaxError, TransportError
from laxchange.home import Home
from laxchange.transport.identity import ssh_identity_fingerprint
from laxchange.trust.keystore import Keyring

__all__ = ["logins_file", "previous_key_error", "previous_key_fingerprint", "previous_only", "record_logins",
           "warning"]


def logins_file(home: Home) -> Path:
    return home.root / "cache" / "ssh-logins.json"


def previous_key_fingerprint(ring: Keyring) -> str | None:
    """The SHA256 fingerprint of our previous SSH key while its overlap lasts, else None."""
    return ssh_identity_fingerprint(ring.ssh_previous_public_key) if ring.ssh_previous_public_key else None


def _load(home: Home) -> dict[str, dict[str, Any]]:
    """The note's entries by party; a note missing or damaged is no note (it is only a cache)."""
    try:
        data = jsonio.loads_strict(logins_file(home).read_bytes())
    except (OSError, LaxError):
        return {}
    found = data.get("previous_key_only") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, dict)}


def previous_only(home: Home, ring: Keyring) -> dict[str, str]:
    """Party → when a run last logged in to its server with only our previous SSH key, for the key
    in its overlap now (none when no rotation is under way)."""
    fpr = previous_key_fingerprint(ring)
    if fpr is None:
        return {}
    return {party: e["at"] for party, e in _load(home).items()
            if e.get("previous_key") == fpr and isinstance(e.get("at"), str)}


def record_logins(home: Home, ring: Keyring, at: dt.datetime, logins: dict[str, bool]) -> None:
    """Note tonight's logins (party → only the previous key worked): a party that took only the
    previous key is noted, one that took the current key is forgotten, and the others are kept
    as they were. Outside an overlap the note is emptied. A note that cannot be written costs only
    `doctor`'s view of it (the run's report has it anyway), so that is not an error."""
    fpr = previous_key_fingerprint(ring)
    path = logins_file(home)
    if fpr is None and not path.exists():
        return
    before = _load(home)
    entries = {p: e for p, e in before.items() if fpr is not None and e.get("previous_key") == fpr}
    for party, previous in logins.items():
        if previous and fpr is not None:
            entries[party] = {"at": timefmt.fmt(at), "previous_key": fpr}
        else:
            entries.pop(party, None)
    if entries == before and path.exists():
        return  # nothing new to note: the file is not rewritten every night
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        jsonio.write_atomic(path, jsonio.dumps_pretty({"previous_key_only": dict(sorted(entries.items()))})
                            .encode("utf-8"))
    except OSError:
        return


def warning(ring: Keyring, party: str, name: str | None, at: str | None = None) -> dict[str, Any]:
    """One party's warning, as the run's report and `doctor` give it: the code, a message and what
    to do, and `until`, when the previous key is pruned (None if the keyring does not say)."""
    e = previous_key_error(ring, party, name, at)
    return {"party": party, "name": name, "code": e.code, "message": e.message, "hint": e.hint,
            "until": ring.ssh_previous_until, "last_login": at}


def previous_key_error(ring: Keyring, party: str, name: str | None, at: str | None = None) -> TransportError:
    """What `warning` says, as the error it becomes once the previous key is pruned would be (never
    raised: a warning, the connection works)."""
    until = ring.ssh_previous_until
    ours = party == ring.party
    who = "our own drop folder's server" if ours else (f"{name} ({party})'s server" if name else f"{party}'s server")
    when = f" (last logged in to {at})" if at else ""
    ends = f"on {until}" if until else "at the end of the overlap"
    message = (f"{who} accepted only our previous SSH key, not the new one from `laxchange keys rotate --ssh`{when}: "
               f"it works until `keys prune` (the nightly run) destroys the previous key {ends}, then every "
               "connection to it fails")
    line = "`laxchange endpoints ssh-key`"
    if ours:
        hint = (f"add our new SSH key line ({line}) to the authorized_keys of our drop folder's owner account "
                f"before {until or 'the overlap ends'}, keeping the old line until then")
    else:
        hint = (f"send {party} our new card (`laxchange keys export-card -o card.json`) and ask them to install our "
                f"new SSH key ({line}, or `laxchange partners show` at their end) in our account's authorized_keys "
                f"before {until or 'the overlap ends'}, keeping the old line until then")
    return TransportError(message, code="ssh.previous-key-only", hint=hint)
