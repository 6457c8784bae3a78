"""Where passphrases for private keys come from: environment, a file, or a prompt.

Unattended runs (cron, systemd) use `LAXCHANGE_PASSPHRASE` or `LAXCHANGE_PASSPHRASE_FILE`;
people get a prompt. The source is injectable so tests never need a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from laxchange._util.fs import open_regular, read_bounded
from laxchange._util.private import check_private_file
from laxchange.errors import ConfigError, UsageError

ENV_PASSPHRASE = "LAXCHANGE_PASSPHRASE"  # noqa: S105  the variable's name, not a password
ENV_PASSPHRASE_FILE = "LAXCHANGE_PASSPHRASE_FILE"  # noqa: S105  the variable's name, not a password
#: A passphrase file is read whole; anything larger is not one (a mistyped path to a big file).
MAX_PASSPHRASE_FILE = 64 * 1024
#: zxcvbn's score (0-4) a new passphrase must reach: 4, about 10^10 guesses or more. Against
#: scrypt at work factor 2^18 (about a second and 256 MiB a guess) that is some 300 core-years;
#: score 3 (10^8) would be about 3, a fortnight on a hundred machines. Three random words pass.
MIN_STRENGTH = 4
#: zxcvbn judges at most this many characters (its own limit: its work grows faster than the
#: length); a longer passphrase is judged on its first 72, which alone are beyond guessing.
STRENGTH_CHECKED_CHARS = 72
STRONG_ADVICE = "use three or more random words, or 20 or more characters from a password manager"
#: The demo's homes' passphrase, printed for people to paste (`export LAXCHANGE_PASSPHRASE=...`):
#: in that shell an `init` of a real home would take it silently.
DEMO_PASSPHRASE = b"laxchange demo - fictional parties only"
#: Passphrases printed in our own output and docs, or famous as examples: known to everyone, so
#: refused as a new passphrase however strong they look.
PUBLISHED_PASSPHRASES = frozenset({DEMO_PASSPHRASE, b"correct horse battery staple", b"kettle marmalade lighthouse"})


class PassphraseSource(Protocol):
    # `purpose` is positional-only: callers pass it positionally, so a source may name it anything (e.g. `_purpose`).
    def __call__(self, purpose: str, /, *, confirm: bool = False) -> bytes: ...


def passphrase_from_file(path: str | os.PathLike[str]) -> bytes:
    """Read a passphrase file; refuse one that group or others can read."""
    p = Path(path)
    check_private_file(p, what="passphrase file", kind="passphrase",
                       missing_hint=f"create it (mode 0600) or unset {ENV_PASSPHRASE_FILE}")
    try:  # a directory, a file of another user's, a FIFO: said as such (exit 5), not an internal error
        with open_regular(p, what="passphrase file", error=ConfigError) as fh:
            raw = read_bounded(fh, MAX_PASSPHRASE_FILE)
    except ConfigError as exc:
        raise exc.restated(exc.message, hint=f"{ENV_PASSPHRASE_FILE} must name a regular file, mode 0600, that the "
                                             "user laxchange runs as owns and can read") from None
    except OSError as exc:
        raise ConfigError(f"passphrase file {p} cannot be read: {exc.strerror or exc}", code="file.unreadable",
                          hint="check the file and the disk it is on") from None
    if raw is None:
        raise ConfigError(f"passphrase file {p} is larger than {MAX_PASSPHRASE_FILE} bytes: not a passphrase file",
                          code="file.too-large", hint=f"check {ENV_PASSPHRASE_FILE} names the passphrase file")
    data = raw.rstrip(b"\r\n")
    if not data:
        raise ConfigError(f"passphrase file {p} is empty", code="passphrase.empty", hint="write the passphrase into it")
    return data


def check_new_passphrase(passphrase: bytes, *, about: Sequence[str] = (), source: str | None = None) -> None:
    """Refuse a new passphrase that someone holding a copy of the key files could guess.

    The key files are only as safe as the passphrase once a backup or a disk leaves the building,
    so it is judged where it is chosen (`KeyStore.init`, `change_passphrase`), never where an
    existing one is used. `about` is what an attacker knows of us (the party's id and name): a
    passphrase built from it counts as guessed. `source` says where it was read, for the message.
    The message never repeats the passphrase."""
    where = f" (read from {source})" if source else ""
    if passphrase.strip() in PUBLISHED_PASSPHRASES:
        raise UsageError(f"the new passphrase{where} is one printed in laxchange's own output or documentation, "
                         "known to everyone", code="passphrase.weak",
                         hint=f"{STRONG_ADVICE}, of your own; if it came from the demo's `export "
                              "LAXCHANGE_PASSPHRASE=...`, unset LAXCHANGE_PASSPHRASE first; nothing was changed",
                         details={"score": 0, "required": MIN_STRENGTH})
    from zxcvbn import zxcvbn

    text = passphrase.decode("utf-8", errors="replace")[:STRENGTH_CHECKED_CHARS]
    # Whole first, each once: zxcvbn ranks earlier inputs as likelier guesses (a repeat takes the later rank).
    words = dict.fromkeys([*about, *(w for item in about for w in (item.replace(":", ""),
                                                                     *item.replace(":", " ").split())),
                           "laxchange", "virtual school", "passphrase"])
    result = zxcvbn(text, user_inputs=list(words))
    if result["score"] >= MIN_STRENGTH:
        return
    warning = _clause(str(result["feedback"].get("warning") or ""))
    tips = [_clause(str(t)) for t in result["feedback"].get("suggestions") or []]
    raise UsageError(f"the new passphrase{where} is too easy to guess" + (f": {warning}" if warning else ""),
                     code="passphrase.weak",
                     hint="; ".join([STRONG_ADVICE, *filter(None, tips), "nothing was changed"]),
                     details={"score": int(result["score"]), "required": MIN_STRENGTH})


def _clause(sentences: str) -> str:
    """zxcvbn's feedback ("Add another word or two. Uncommon words are better.") as one clause of ours."""
    parts = [p.strip() for p in sentences.strip().rstrip(".").split(". ") if p.strip()]
    return "; ".join(p[0].lower() + p[1:] for p in parts)


class DefaultPassphraseSource:
    """Environment variable, then passphrase file, then an interactive prompt (if a terminal).
    `used` says which gave the last passphrase, for a wrong one's hint (`wrong_passphrase_hint`):
    with both variables set, the first wins silently, and "check the one or the other" had
    council IT editing the file that was never read."""

    def __init__(self, environ: Mapping[str, str] | None = None,
                 prompt: Callable[[str, bool], str] | None = None) -> None:
        self.env = os.environ if environ is None else environ
        self.prompt = prompt
        self.used: str | None = None

    def __call__(self, purpose: str, /, *, confirm: bool = False) -> bytes:
        env = self.env
        if env.get(ENV_PASSPHRASE):
            self.used = f"{ENV_PASSPHRASE}, set in this environment" + (
                f" (it wins over {ENV_PASSPHRASE_FILE}, also set)" if env.get(ENV_PASSPHRASE_FILE) else "")
            return env[ENV_PASSPHRASE].encode("utf-8")
        if env.get(ENV_PASSPHRASE_FILE):
            self.used = f"the file {ENV_PASSPHRASE_FILE} names, {env[ENV_PASSPHRASE_FILE]}"
            return passphrase_from_file(env[ENV_PASSPHRASE_FILE])
        self.used = "the prompt"
        if self.prompt is not None:
            return self.prompt(purpose, confirm).encode("utf-8")
        if not sys.stdin.isatty():
            raise ConfigError(
                f"a passphrase is needed to {purpose}, and there is no terminal to ask",
                code="passphrase.unavailable",
                hint=f"set {ENV_PASSPHRASE} or {ENV_PASSPHRASE_FILE} for unattended runs",
            )
        value = ask_hidden(f"Passphrase to {purpose}", confirm=confirm, hint=f"or set {ENV_PASSPHRASE} or "
                                                                             f"{ENV_PASSPHRASE_FILE}")
        if not value:
            raise ConfigError("empty passphrase", code="passphrase.empty", hint="choose a non-empty passphrase")
        return str(value).encode("utf-8")


def default_passphrase_source(
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str, bool], str] | None = None,
) -> DefaultPassphraseSource:
    """Environment variable, then passphrase file, then an interactive prompt (if a terminal)."""
    return DefaultPassphraseSource(environ, prompt)


def source_of(source: PassphraseSource) -> str | None:
    """Where `source` read its last passphrase, when it says (`DefaultPassphraseSource.used`, or a
    wrapper's `used`)."""
    used = getattr(source, "used", None)
    return used if isinstance(used, str) else None


def wrong_passphrase_hint(source: PassphraseSource) -> str:
    """What to check when `source`'s passphrase did not open a key: the place it came from, when known."""
    used = source_of(source)
    if used is None:
        return f"check {ENV_PASSPHRASE} / {ENV_PASSPHRASE_FILE}"
    if used == "the prompt":
        return "the passphrase was typed at the prompt: run the command again and type it carefully"
    return f"the passphrase came from {used}: check it there"


def ask_hidden(text: str, *, confirm: bool = False, hint: str = "") -> str:
    """click's hidden prompt, with its two ways out kept apart from a refusal. Click makes both
    Ctrl-D and an interrupt at a prompt `Abort` ("Aborted!", exit 1, the code for invalid data):
    here an interrupt (Ctrl-C, or SIGTERM as the CLI raises it) stays one (exit 130 or 143, as
    anywhere else), and the input ending is `passphrase.unavailable` (exit 5)."""
    import click

    try:
        return str(click.prompt(text, hide_input=True, confirmation_prompt=confirm))
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise exc.__context__ from None
        raise ConfigError(f"no passphrase was given: the input ended at the prompt ({text})",
                          code="passphrase.unavailable",
                          hint=f"run the command again and type the passphrase{', ' + hint if hint else ''}") from None
