"""`laxchange init`, `laxchange keys ...` and `laxchange partners ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from laxchange import age
from laxchange._util import jsonio
from laxchange._util.fs import check_output, open_regular, read_bounded
from laxchange.cli.app import App, needs_home, output_options
from laxchange.errors import ConfigError, UsageError
from laxchange.passphrase import ask_hidden
from laxchange.transport import authorized_keys_line
from laxchange.trust import CardVersion, Partner, PartnerDirectory, build_area, build_card, read_card, read_schools_csv
from laxchange.trust.area import MAX_AREA_BYTES
from laxchange.trust.keystore import ALG_HYBRID, ALG_X25519, DEFAULT_OVERLAP_DAYS, DEFAULT_VALIDITY_DAYS, KeyStore

_WF = age.recipients.DEFAULT_SCRYPT_WORK_FACTOR
#: Where `keys passphrase` finds the new passphrase in unattended use (else --new-passphrase-file, else a prompt).
ENV_NEW_PASSPHRASE = "LAXCHANGE_NEW_PASSPHRASE"  # noqa: S105  the variable's name, not a password


def _store(app: App, work_factor: int = _WF) -> KeyStore:
    return KeyStore(app.home, work_factor=work_factor, clock=app.clock)


def _keys_table(keys: list[dict[str, Any]]) -> str:
    width = max([13, *(len(k["status"]) for k in keys)])
    kw = max([32, *(len(k["kid"]) for k in keys)])
    private = any("private" in k for k in keys)
    head = f"  {'KEY ID':{kw}}  {'USE':10}  {'ALGORITHM':14}  {'STATUS':{width}}  {'NOT AFTER':20}"
    lines = [head + ("  PRIVATE" if private else "")]
    for k in keys:
        line = f"  {k['kid']:{kw}}  {k['use']:10}  {k['alg']:14}  {k['status']:{width}}  {k['not_after'] or '-':20}"
        lines.append((line + f"  {k['private']}") if private else line.rstrip())
    return "\n".join(line.rstrip() for line in lines)


def _key_rows(store: KeyStore) -> list[dict[str, Any]]:
    states = store.key_states()
    return [{**k.to_dict(), **states[k.kid]} for k in store.ring().keys]


def _expiry_warnings(store: KeyStore) -> list[str]:
    return [f"{k.use} key {k.kid} ({k.alg}) expires at {k.not_after} and nothing replaces it: "
            "run `laxchange keys rotate` before then" for k in store.expiring()]


@needs_home("none")  # it makes the home
@click.command("init")
@click.option("--party", required=True, help="Party id: LA:NNN (council) or URN:NNNNNN (school).")
@click.option("--name", required=True, help="The organisation's name as partners know it.")
@click.option("--role", default=None, help="Role on the card (default from the party id).")
@click.option("--encryption", type=click.Choice([ALG_HYBRID, ALG_X25519]), default=ALG_HYBRID, show_default=True,
              help="Encryption key type: post-quantum hybrid, or X25519 for partners without PQ.")
@click.option("--mldsa/--no-mldsa", default=False, help="Also sign with ML-DSA-65 (post-quantum).")
@click.option("--validity-days", type=click.IntRange(1, 3650), default=DEFAULT_VALIDITY_DAYS, show_default=True)
@click.option("--sftp-url", default=None, help="Our SFTP endpoint, sftp://user@host:port/path.")
@click.option("--host-key-fingerprint", "host_fprs", multiple=True, help="SFTP host key, SHA256:... (repeatable).")
@click.option("--kdf-work-factor", type=click.IntRange(10, 22), default=_WF, hidden=True)
@output_options
@click.pass_obj
def init(app: App, party: str, name: str, role: str | None, encryption: str, mldsa: bool, validity_days: int,
         sftp_url: str | None, host_fprs: tuple[str, ...], kdf_work_factor: int) -> None:
    """Create this party's keys (encryption, signing, SSH) in the home directory."""
    store = _store(app, kdf_work_factor)
    ring = store.init(party, name, encryption_alg=encryption, mldsa=mldsa, validity_days=validity_days,
                      sftp_url=sftp_url, host_key_fingerprints=list(host_fprs), role=role)
    _, fpr = build_card(store)
    rows = _key_rows(store)
    app.emit({"party": ring.party, "name": ring.name, "home": str(app.home.root), "fingerprint": fpr,
              "keys": rows, "ssh_public_key": ring.ssh_public_key},
             f"Initialised {ring.party} ({ring.name}) in {app.home.root}\n{_keys_table(rows)}\n"
             f"Card fingerprint: {fpr}\n"
             "Next: laxchange keys export-card -o card.json, and read the fingerprint to partners by phone.")


@click.group("keys")
def keys() -> None:
    """Our own keys: list, rotate, revoke, prune, change the passphrase, export our card."""


@keys.command("list")
@output_options
@click.pass_obj
def keys_list(app: App) -> None:
    """List our keys with their true status, and warn of any expiring within 30 days unreplaced.

    STATUS: valid, not-yet-valid, expired (never replaced: rotate), retired (replaced by a
    rotation), retired-awaiting-prune (a signing key `keys prune` will destroy), revoked,
    missing-private-file (restore it from backup). PRIVATE: present, archived, destroyed, missing.
    """
    store = _store(app)
    ring = store.ring()
    rows = _key_rows(store)
    ssh = store.ssh_key_states()
    warnings = _expiry_warnings(store)
    if not app.json:
        for w in warnings:
            app.warn(f"laxchange: warning: {w}")
    app.emit({"party": ring.party, "keys": rows, "ssh_keys": ssh, "warnings": warnings},
             f"{ring.party} ({ring.name})\n{_keys_table(rows + ssh)}")


@keys.command("prune")
@click.option("--dry-run", is_flag=True, help="Only show what would be destroyed.")
@output_options
@click.pass_obj
def keys_prune(app: App, dry_run: bool) -> None:
    """Destroy retired private signing keys (after their rotation overlap), with an audit entry each."""
    from laxchange.exchange import Party

    with Party.from_home(app.home, keystore=_store(app), clock=app.clock) as me:
        me.keystore.ring()
        gone = me.prune_keys(dry_run=dry_run)
    verb = "Would destroy" if dry_run else "Destroyed"
    app.emit({"dry_run": dry_run, "destroyed": gone},
             "\n".join(f"{verb} {g['use']} key {g['kid']} ({g['reason']})" for g in gone) or "Nothing to prune.")


@keys.command("rotate")
@click.option("--overlap-days", type=click.IntRange(0, 365), default=DEFAULT_OVERLAP_DAYS, show_default=True,
              help="How long the old keys stay valid alongside the new ones.")
@click.option("--encryption", type=click.Choice([ALG_HYBRID, ALG_X25519]), default=None,
              help="Key type for the new encryption key (default: as before).")
@click.option("--ssh", is_flag=True, help="Rotate the SSH client key instead: the old one is still offered to "
                                          "partners' servers, and stays on the card, for the overlap.")
@click.option("--kdf-work-factor", type=click.IntRange(10, 22), default=_WF, hidden=True)
@output_options
@click.pass_obj
def keys_rotate(app: App, overlap_days: int, encryption: str | None, ssh: bool, kdf_work_factor: int) -> None:
    """Make new keys; old ones overlap, then retire (kept in the archive for old packages)."""
    store = _store(app, kdf_work_factor)
    if ssh:
        if encryption is not None:
            raise UsageError("--encryption is for package keys, not with --ssh", code="usage.invalid",
                             hint="rotate the SSH key and the package keys in two runs")
        ring = store.ring()
        line = authorized_keys_line(store.rotate_ssh(overlap_days=overlap_days), ring.party)  # as `endpoints ssh-key`
        ring = store.ring()
        _, fpr = build_card(store)
        app.emit({"ssh_public_key": line, "previous_ssh_public_key": ring.ssh_previous_public_key,
                  "previous_until": ring.ssh_previous_until, "fingerprint": fpr},
                 f"New SSH client key:\n  {line}\n"
                 f"Ask every partner to ADD this line to the authorized_keys of the account we use on their SFTP "
                 f"server, keeping the old line until {ring.ssh_previous_until}; until then laxchange still "
                 "offers the old key when a server refuses the new one.\n"
                 f"Card fingerprint (unchanged: the SSH key is not part of it): {fpr}\n"
                 "Send the new card (keys export-card) to every partner; "
                 "`laxchange keys prune` destroys the old key after the overlap.")
        return
    new = store.rotate(overlap_days=overlap_days, encryption_alg=encryption)
    _, fpr = build_card(store)
    app.emit({"new_keys": [k.to_dict() for k in new], "fingerprint": fpr},
             "New keys:\n" + "\n".join(f"  {k.kid}  {k.use}  {k.alg}" for k in new)
             + f"\nNew card fingerprint: {fpr}\nSend the new card (keys export-card) to every partner.")


@keys.command("passphrase")
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"Read the new passphrase from this 0600 file (else ${ENV_NEW_PASSPHRASE}, else a prompt).")
@click.option("--kdf-work-factor", type=click.IntRange(10, 22), default=_WF, hidden=True)
@output_options
@click.pass_obj
def keys_passphrase(app: App, new_passphrase_file: Path | None, kdf_work_factor: int) -> None:
    """Re-encrypt every private key file (keys, archive, SSH key) under a new passphrase.

    The current passphrase (LAXCHANGE_PASSPHRASE / LAXCHANGE_PASSPHRASE_FILE / a prompt) must open
    every file before any is changed; each file is then replaced atomically. If it is interrupted,
    run it again with the same two passphrases: it finishes the files still under the old one.
    Like `keys rotate`, `revoke` and `prune`, it holds the home's run lock: while a nightly run
    is under way it is refused (exit 5) and changes nothing.
    """
    store = _store(app, kdf_work_factor)
    store.ring()
    store.private_files()
    new, source = _new_passphrase(new_passphrase_file)
    result = store.change_passphrase(new, source=source)
    app.emit(result, f"Re-encrypted {result['changed']} of {result['files']} private key files under the new "
                     "passphrase.\nUpdate LAXCHANGE_PASSPHRASE / the passphrase file the nightly run uses.")


def _new_passphrase(path: Path | None) -> tuple[bytes, str]:
    """The new passphrase, and where it was read (for a refusal's message)."""
    import os
    import sys

    from laxchange.passphrase import passphrase_from_file

    if path is not None:
        return passphrase_from_file(path), f"--new-passphrase-file {path}"
    if os.environ.get(ENV_NEW_PASSPHRASE):
        return os.environ[ENV_NEW_PASSPHRASE].encode("utf-8"), f"{ENV_NEW_PASSPHRASE}, set in this environment"
    if not sys.stdin.isatty():
        raise ConfigError("the new passphrase is needed, and there is no terminal to ask",
                          code="passphrase.unavailable",
                          hint=f"pass --new-passphrase-file FILE (0600) or set {ENV_NEW_PASSPHRASE}")
    return ask_hidden("New passphrase", confirm=True,
                      hint=f"or pass --new-passphrase-file FILE (0600) or set {ENV_NEW_PASSPHRASE}"
                      ).encode("utf-8"), "the prompt"


@keys.command("revoke")
@click.argument("kid")
@click.option("--reason", required=True, help='Why, e.g. "key-compromise" or "superseded".')
@output_options
@click.pass_obj
def keys_revoke(app: App, kid: str, reason: str) -> None:
    """Revoke one of our keys from now on."""
    store = _store(app)
    info = store.revoke(kid, reason)
    app.emit({"revoked": info.to_dict()},
             f"Revoked {info.kid} at {info.revoked_at} ({info.revocation_reason}).\n"
             "Send the new card to every partner; rotate if this was your only key of its kind.")


@keys.command("export-card")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the card here (default: print it).")
@click.option("--sftp-url", default=None, help="Set our SFTP endpoint on the card (a new host or port needs "
                                                "--host-key-fingerprint too).")
@click.option("--host-key-fingerprint", "host_fprs", multiple=True, help="Set SFTP host key(s), SHA256:...")
@output_options
@click.pass_obj
def export_card(app: App, output: Path | None, sftp_url: str | None, host_fprs: tuple[str, ...]) -> None:
    """Export our signed card for partners, and show its fingerprint to read out to them."""
    store = _store(app)
    if sftp_url is not None or host_fprs:
        store.set_endpoint(sftp_url, list(host_fprs) if host_fprs else None)
    card, fpr = build_card(store)
    ring = store.ring()
    if output is not None:
        jsonio.write_atomic(output, jsonio.dumps_pretty(card).encode("utf-8"), mode=0o644)
        app.emit({"party": ring.party, "fingerprint": fpr, "path": str(output)},
                 f"Wrote card for {ring.party} to {output}\nFingerprint: {fpr}")
    else:
        app.emit({"party": ring.party, "fingerprint": fpr, "card": card},
                 jsonio.dumps_pretty(card).rstrip("\n") + f"\n# fingerprint: {fpr}")


@click.group("partners")
def partners() -> None:
    """The partner directory: cards we trust."""


def _trust_text(p: Partner) -> str:
    t = p.trust or {}
    if t.get("by") == "introduction":
        area = t["area"]
        return (f"introduced by {t['introducer']} at {t['at']} (its area directory issued {area['issued']}, "
                f"sha256 {area['sha256'][:16]}…)")
    return f"confirmed by us (fingerprint) at {t.get('at', '-')}"


def _contact_text(c: dict[str, str] | None) -> str:
    return ", ".join(c[k] for k in ("name", "email", "phone") if k in c) if c else "-"


@partners.command("add")
@click.argument("target", metavar="CARD|URN")
@click.option("--fingerprint", default=None,
              help="The card fingerprint, confirmed with the partner out of band (required for a new partner).")
@click.option("--introduced-by", "introduced_by", default=None, metavar="LA:NNN",
              help="Add the school TARGET (URN:NNNNNN) from this council's area directory (--area) instead: "
                   "a council whose fingerprint we confirmed ourselves.")
@click.option("--area", "area", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The introducing council's signed area directory (`partners publish-area`), with --introduced-by.")
@output_options
@click.pass_obj
def partners_add(app: App, target: str, fingerprint: str | None, introduced_by: str | None,
                 area: Path | None) -> None:
    """Add or update a partner from its card, or a school introduced by its council.

    CARD.json --fingerprint FPR: the fingerprint read out by the partner (no trust on first use).
    URN:NNNNNN --introduced-by LA:NNN --area AREA.json: a school from the signed area directory of
    its council, a council whose fingerprint we confirmed ourselves (docs/format.md §8.1).
    """
    directory = PartnerDirectory(app.home, clock=app.clock)
    if introduced_by is not None or area is not None:
        if introduced_by is None or area is None or fingerprint is not None:
            raise UsageError("an introduction needs both --introduced-by and --area (and no --fingerprint)",
                             code="usage.bad-option",
                             hint="laxchange partners add URN:NNNNNN --introduced-by LA:NNN --area AREA.json")
        partner, outcome = directory.introduce(jsonio.load_file(area, max_bytes=MAX_AREA_BYTES), target,
                                               introduced_by=introduced_by)
        human = {"introduced": f"Introduced: {partner.party} ({partner.name}), fingerprint {partner.fingerprint}, "
                               f"{_trust_text(partner)}\n"
                               f"Designated Teacher: {_contact_text(partner.designated_teacher)}",
                 "unchanged": f"Unchanged: {partner.party} ({partner.name}) is already introduced by {introduced_by}",
                 "kept-direct": f"Kept: {partner.party} ({partner.name}) is confirmed by us (fingerprint "
                                f"{partner.fingerprint}); an introduction never replaces that"}[outcome]
        app.emit({"outcome": outcome, **partner.to_summary()}, human)
        return
    if target.upper().startswith(("URN:", "LA:")) and not Path(target).exists():
        raise UsageError(f"{target} is a party id, not a card file", code="usage.bad-argument",
                         hint=f"add it from its card (`partners add CARD.json --fingerprint FPR`), or, for a school, "
                              f"from its council's area directory: `partners add {target} --introduced-by LA:NNN "
                              "--area AREA.json`")
    card = click.Path(exists=True, dir_okay=False, path_type=Path).convert(
        target, None, click.get_current_context())
    doc = jsonio.load_file(card, max_bytes=256 * 1024)
    store = _store(app)
    if store.exists() and read_card(doc)[0].party == store.ring().party:  # we would be our own partner
        raise UsageError(f"{card} is our own card ({store.ring().party}), not a partner's", code="partner.is-us",
                         hint="add the card a partner sent us; ours goes to them (`laxchange keys export-card`)")
    partner, outcome = directory.add(doc, fingerprint=fingerprint)
    app.emit({"outcome": outcome, **partner.to_summary()},
             f"{outcome.capitalize()}: {partner.party} ({partner.name}), fingerprint {partner.fingerprint}"
             + (" (was introduced; now confirmed by us)" if outcome == "confirmed" else ""))


@partners.command("publish-area")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the signed area directory here.")
@click.option("--schools", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV of our schools: urn, la_code, and optionally dt_name, dt_email, dt_phone (their Designated "
                   "Teacher).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@output_options
@click.pass_obj
def partners_publish_area(app: App, output: Path, schools: Path, force: bool) -> None:
    """Publish our signed area directory (our schools' cards) for councils that trust us.

    It carries the cards of the schools in --schools that are in our LA and that we confirmed
    ourselves, with their Designated Teachers; councils that confirmed our fingerprint can then add
    them with `partners add URN --introduced-by OUR-LA --area FILE`.
    """
    store = _store(app)
    ring = store.ring()
    if not ring.party.startswith("LA:"):
        raise UsageError(f"{ring.party} is a school: only a council publishes an area directory",
                         code="area.not-council", hint="ask your council to publish one")
    check_output(output, inputs=[schools], overwrite=force, what="area directory")
    with open_regular(schools, what="schools list") as fh:
        data = read_bounded(fh, 16 * 1024 * 1024)
    if data is None:
        raise UsageError(f"schools list {schools} is larger than 16 MiB", code="area.schools-file",
                         hint="list only your own schools")
    rows = read_schools_csv(data, source=str(schools))
    entries, left_out = PartnerDirectory(app.home, clock=app.clock).area_entries(ring.party, rows)
    envelope = build_area(store, entries)
    jsonio.write_atomic(output, jsonio.dumps_pretty(envelope).encode("utf-8"), mode=0o644)
    plural = "s" if len(entries) != 1 else ""
    lines = [f"Wrote the area directory of {ring.party} to {output}: {len(entries)} school{plural}"]
    lines += [f"  left out {party}: {why}" for party, why in left_out.items()]
    app.emit({"party": ring.party, "path": str(output), "schools": [p.party for p, _, _ in entries],
              "left_out": left_out}, "\n".join(lines))


@partners.command("refresh-area")
@click.argument("area", type=click.Path(dir_okay=False, path_type=Path))
@output_options
@click.pass_obj
def partners_refresh_area(app: App, area: Path) -> None:
    """Take in a council's newer area directory (withdraws schools it no longer lists)."""
    got, report = PartnerDirectory(app.home, clock=app.clock).refresh_area(
        jsonio.load_file(area, max_bytes=MAX_AREA_BYTES))
    lines = [f"Area directory of {got.introducer} issued {got.issued}: {len(got.schools)} schools"]
    lines += [f"  withdrawn {p} (no longer in it)" for p in report["withdrawn"]]
    lines += [f"  updated {p} (a new card)" for p in report["updated"]]
    lines += [f"  kept our card of {p}: its card in the area directory would undo a revocation or lengthen a key"
              for p in report["refused"]]
    app.emit({"area": got.ref(), **report}, "\n".join(lines))


@partners.command("list")
@output_options
@click.pass_obj
def partners_list(app: App) -> None:
    """List partners."""
    items = PartnerDirectory(app.home, clock=app.clock).list()
    app.emit({"partners": [{"party": p.party, "name": p.name, "role": p.role, "fingerprint": p.fingerprint,
                            "sftp_url": p.sftp_url, "trust": p.trust, "introduced_by": p.introduced_by}
                           for p in items]},
             "\n".join(f"{p.party:12} {p.fingerprint}  {p.name}"
                       + (f"  (introduced by {p.introduced_by})" if p.introduced_by else "") for p in items)
             or "No partners yet.")


def _reads_text(p: Partner) -> str:
    """What the partner's card says it reads (docs/format.md §8.2), and so what we write to it."""
    from laxchange.exchange.receipts import receipt_version_for  # the receipts module only for `show`

    try:
        ours = f"we send it receipt {receipt_version_for(p)}"
    except ConfigError as exc:
        ours = f"we send it no receipt: {exc.message}"
    if p.reads is None:
        return f"nothing said (an older laxchange): package format 1.0; {ours}; take its card again once it updates"
    receipts = p.reads_versions("receipt")
    return f"package format {p.reads.get('format', '1.0')}, receipts {', '.join(receipts or ['-'])}; {ours}"


@partners.command("show")
@click.argument("party")
@output_options
@click.pass_obj
def partners_show(app: App, party: str) -> None:
    """Show one partner's card.

    Its SSH key is shown as the line for our server's authorized_keys, ending with the partner's
    party id (`SSH key: ssh-ed25519 AAAA... URN:123456`), as `laxchange serve-sftp` needs it.
    """
    p = PartnerDirectory(app.home, clock=app.clock).get(party)
    now = app.clock.now()
    rows = [{**k.to_dict(), "status": k.status_at(now)} for k in p.keys]
    ssh = f"SSH key: {authorized_keys_line(p.ssh_public_key, p.party) if p.ssh_public_key else '-'}\n"
    if p.ssh_previous_public_key:
        ssh += (f"SSH key, previous (keep its line too until {p.ssh_previous_until}): "
                f"{authorized_keys_line(p.ssh_previous_public_key, p.party)}\n")
    app.emit(p.to_summary(),
             f"{p.party} ({p.name}), {p.role}\nFingerprint: {p.fingerprint}\nIssued: {p.issued}\n"
             f"SFTP: {p.sftp_url or '-'}  host keys: {', '.join(p.host_key_fingerprints) or '-'}\n{ssh}"
             f"Signatures required: {', '.join(p.required_signature_algorithms)}\nTrust: {_trust_text(p)}\n"
             f"Reads: {_reads_text(p)}\n"
             + (f"Designated Teacher: {_contact_text(p.designated_teacher)}\n" if p.introduced_by else "")
             + _keys_table(rows))


@partners.command("remove")
@click.argument("party")
@output_options
@click.pass_obj
def partners_remove(app: App, party: str) -> None:
    """Stop trusting a partner (its card history is kept, for verifying its old packages)."""
    withdrawn = PartnerDirectory(app.home, clock=app.clock).remove(party)
    app.emit({"removed": party, "withdrawn": withdrawn},
             f"Removed {party}. Its card history is kept (`laxchange partners history {party}`); "
             "adding it again needs its fingerprint."
             + "".join(f"\n  withdrawn {w} (introduced by {party})" for w in withdrawn))


def _confirmation(v: CardVersion) -> str:
    c = v.confirmed or {}
    if c.get("by") == "fingerprint":
        legacy = " (a version-1 fingerprint, from before card history)" if c.get("fingerprint_version") == 1 else ""
        return f"confirmed out of band: fingerprint {c['fingerprint']}{legacy}"
    if c.get("by") == "introduction":
        return (f"introduced by {c['introducer']} (fingerprint {c['introducer_fingerprint']}): its area directory "
                f"issued {c['area']['issued']}, sha256 {c['area']['sha256']}")
    return "signed by the keys we held: " + ", ".join(c.get("signed_by") or [])


def _history_text(party: str, versions: list[CardVersion]) -> str:
    cards = sum(v.partner is not None for v in versions)
    lines = [f"{party}: {cards} card version{'s' if cards != 1 else ''}"
             + (" (read from a partner file of an older release; rewritten on its next change)"
                if versions and versions[0].migrated else "")]
    for v in versions:
        if v.partner is None:
            w = v.withdrawal
            why = "" if w is None else (f"  by {w['by']}: " + ("it withdrew the school from its area directory"
                                                                if w["reason"] == "withdrawn-by-introducer"
                                                                else "the introducer was removed"))
            lines.append(f"  #{v.seq}  {v.at}  {v.event}{why}")
            continue
        p = v.partner
        lines.append(f"  #{v.seq}  {v.at}  {v.event:8}  fingerprint {p.fingerprint}  issued {p.issued}  ({p.name})")
        lines.append(f"        {_confirmation(v)}")
        for k in p.keys:
            revoked = f", revoked {k.revoked_at} ({k.revocation_reason})" if k.revoked_at else ""
            lines.append(f"        {k.kid}  {k.use:10}  {k.alg:14}  {k.not_before} .. {k.not_after or '-'}{revoked}")
    return "\n".join(lines)


@partners.command("history")
@click.argument("party")
@output_options
@click.pass_obj
def partners_history(app: App, party: str) -> None:
    """Every card version a partner presented (oldest first), how and when each was confirmed.

    Kept append-only, removals included, so the keys that signed an old package can be walked
    back years later (`laxchange open --archive`).
    """
    versions = PartnerDirectory(app.home, clock=app.clock).history(party)
    app.emit({"party": party, "versions": [v.to_dict() for v in versions]}, _history_text(party, versions))
