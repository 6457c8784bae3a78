"""`laxchange send`, `collect`, `serve-sftp` and `endpoints`: parse, call the transport library, print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from laxchange.cli.app import App, needs_home, output_options
from laxchange.errors import ConfigError, InternalError, TransportError, UsageError
from laxchange.exchange import ConfigEndpoints, DirectoryEndpoints, Party
from laxchange.passphrase import default_passphrase_source
from laxchange.transport import (
    Endpoint,
    PartyResult,
    RetryPolicy,
    SftpSettings,
    authorized_keys_line,
    ensure_ssh_identity,
)
from laxchange.transport.endpoints import BACKENDS, check_fingerprint, parse_url
from laxchange.trust import check_party
from laxchange.trust.keystore import KeyStore


def _party(app: App, timeout: float, retries: int) -> Party:
    def warn(party: str, n: int, exc: TransportError, delay: float) -> None:
        if not app.json:
            app.warn(f"laxchange: {party}: {exc.message}; retry {n} in {delay:.1f}s")

    return Party.from_home(app.home, passphrase=default_passphrase_source(), sftp=SftpSettings(timeout=timeout),
                           retry=RetryPolicy(attempts=retries, budget=max(10.0, 3 * timeout)), on_retry=warn)


def _finish(ctx: click.Context, app: App, verb: str, results: list[PartyResult]) -> None:
    """Print per-file outcomes; exit 4 with the first error when anything failed."""
    data: dict[str, Any] = {"parties": [r.to_dict() for r in results]}
    failed = [r for r in results if not r.ok]
    if not app.json:
        for r in results:
            for w in r.warnings:
                app.warn(f"laxchange: warning: {w}")
            for f in r.files:
                if f.error is None:
                    where = f" ({f.folder}/)" if f.folder else ""
                    name = f.name if not f.local else (f"{f.local} as {f.name}" if verb == "sent"
                                                       else f"{f.name} (saved as {f.local})")
                    if verb == "collected" and f.sender:  # whose folder it was in; verified only when opened
                        app.say(f"{verb} {name} ({f.size} bytes), delivered into {f.sender}'s folder ({f.folder}/) "
                                f"of {r.party}'s drop folder (sender not yet verified)")
                    else:
                        app.say(f"{verb} {name} ({f.size} bytes) {'to' if verb == 'sent' else 'from'} "
                                f"{r.party}{where}")
    if not failed:
        app.emit(data)
        return
    first = failed[0]
    err = first.first_error() or InternalError(f"{first.party}: failed without an error", code="internal.error")
    if app.json:
        app.write_json({"ok": False, **data, "error": err.to_dict()})
        ctx.exit(err.exit_code)
    raise err if first.party in err.message else err.annotated(prefix=f"{first.party}: ")




def _connection_options(f: Any) -> Any:
    """--timeout and --retries, the same for every command that connects to a partner."""
    f = click.option("--retries", type=click.IntRange(1, 10), default=4, show_default=True,
                     help="Attempts per operation when the connection fails (transient errors only).")(f)
    return click.option("--timeout", type=click.FloatRange(0.5, 600), default=15.0, show_default=True,
                        help="Seconds allowed for each connect/handshake/auth step and any stalled read or "
                             "write.")(f)


@needs_home("set-up")  # a transport-only home (config.json endpoints, an SSH key) will do
@click.command("send")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "party", required=True, help="Receiving party, e.g. LA:919 or URN:123456.")
@_connection_options
@output_options
@click.pass_context
def send_cmd(ctx: click.Context, files: tuple[Path, ...], party: str, timeout: float, retries: int) -> None:
    """Deliver package files to a partner's drop folder (atomically; retried safely).

    Only packages are sent: a record in plain text (`send.plain-record`) or any other file that
    is not a package (`send.not-a-package`) is refused, before anything is uploaded; attach a
    document to its record's package instead (`laxchange pack RECORD ... --attach FILE`)."""
    app: App = ctx.obj
    with _party(app, timeout, retries) as me, app.progress() as bar:
        result = me.send(party, list(files), progress=bar)
    _finish(ctx, app, "sent", [result])


@click.command("withdraw")
@click.argument("transfer")
@click.option("--to", "party", default=None, metavar="PARTY",
              help="The party it is queued for (needed only if it is queued for more than one).")
@output_options
@click.pass_obj
def withdraw_cmd(app: App, transfer: str, party: str | None) -> None:
    """Take back a queued package before it is sent: never sent, kept in outbox/withdrawn/.

    For a placement notified twice, a record packed by mistake, or a package packed elsewhere
    (`pack -o FILE`) that is not to be sent. Its transfer becomes `expired` (audited as withdrawn),
    so no run sends it or reports it again. One already sent cannot be taken back (exit 2): ask
    the partner to disregard it."""
    if party is not None:
        check_party(party)
    with Party.from_home(app.home, passphrase=default_passphrase_source()) as me:
        done = me.withdraw(transfer, party)
    where = f"; its package is kept in {done.kept}" if done.kept else " (its package was not in the outbox)"
    app.emit({"withdrawn": done.to_dict()}, f"withdrew transfer {done.transfer_id} to {done.party}: it will not "
                                            f"be sent{where}")


@needs_home("set-up")
@click.command("collect")
@click.option("--from", "parties", multiple=True,
              help="Party whose endpoint to collect from (repeatable; default: our own drop folder).")
@click.option("--delete", is_flag=True, help="Delete collected files on the server instead of moving them "
                                             "to processed/.")
@_connection_options
@output_options
@click.pass_context
def collect_cmd(ctx: click.Context, parties: tuple[str, ...], delete: bool, timeout: float,
                retries: int) -> None:
    """Fetch files partners left for us into the inbox; remote copies move to processed/ once ours is safe."""
    app: App = ctx.obj
    with _party(app, timeout, retries) as me, app.progress() as bar:
        results = me.collect(parties, delete=delete, progress=bar)
    if not app.json and not any(r.files for r in results) and all(r.ok for r in results):
        app.say("nothing to collect")
    _finish(ctx, app, "collected", results)


def _drop_folder(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    folders: dict[str, str] = {}
    for v in values:
        folder, sep, party = v.partition("=")
        if not sep or not folder or not party:
            raise click.BadParameter(f"{v!r} is not FOLDER=PARTY, e.g. inbox=URN:123456", ctx=ctx, param=param)
        if folders.get(folder, party) != party:
            raise click.BadParameter(f"drop folder {folder!r} is given two owners", ctx=ctx, param=param)
        folders[folder] = party
    return folders


def _server_log(app: App, log_file: Path | None) -> None:
    """Connections, authentication results and file operations go to stderr or --log-file (0600)."""
    import logging
    import os

    from laxchange.transport.server import log

    if log_file is None:
        handler: logging.Handler = logging.StreamHandler(app.err)
    else:
        try:
            fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open log file {log_file}: {exc.strerror}", code="server.log-file",
                              hint="choose a file this account can write") from exc
        handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setFormatter(logging.Formatter("%(asctime)s laxchange-sftpd %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


@needs_home("none")  # serves --root with --authorized-keys; no home
@click.command("serve-sftp", epilog="""\b
Example (a school serving its own drop folder to two councils):
  authorized_keys:
    ssh-ed25519 AAAA...school-key... URN:123456
    ssh-ed25519 AAAA...council-key... LA:919
    ssh-ed25519 AAAA...other-council... LA:886
  laxchange serve-sftp --root /srv/laxchange --drop-folder inbox=URN:123456 \\
      --authorized-keys authorized_keys --host-key /srv/laxchange-host-key
\b
LA:919 then sends to sftp://school@HOST:2222/inbox (the URL on the school's card) and sees
only its own files there (stored in inbox/LA_919/); URN:123456 collects from the whole of
inbox/. The SSH user name is not used: the key decides who a client is.""")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding the drop folders (created 0700 if missing).")
@click.option("--drop-folder", "folders", multiple=True, required=True, callback=_drop_folder,
              metavar="FOLDER=PARTY",
              help="A drop folder under --root and the party that owns it and collects from it, e.g. "
                   "inbox=URN:123456 (repeatable; created 0700 if missing). Every other authorised party "
                   "that opens /FOLDER sees only its own sub-folder FOLDER/LA_919/.")
@click.option("--port", type=click.IntRange(0, 65535), default=2222, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--authorized-keys", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="OpenSSH authorized_keys file, one key a line, each line's comment the party id the key "
                   "belongs to: `ssh-ed25519 AAAA... LA:919`, the line `laxchange partners show LA:919` prints "
                   "(and `laxchange endpoints ssh-key` in that party's home).")
@click.option("--host-key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ed25519 host key (OpenSSH format); created if missing.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the log (connections, logins, file operations; names only, never content) here, "
                   "0600, instead of stderr.")
@output_options
@click.pass_context
def serve_sftp_cmd(ctx: click.Context, root: Path, folders: dict[str, str], port: int, host: str,
                   authorized_keys: Path, host_key: Path, log_file: Path | None) -> None:
    """Run an embedded SFTP server (key auth only, each partner confined to its own folder) until interrupted."""
    from laxchange.transport.server import (
        EmbeddedSftpServer,
        ServerAccess,
        load_or_create_host_key,
        read_authorized_keys,
    )

    app: App = ctx.obj
    access = ServerAccess.build(read_authorized_keys(authorized_keys), folders)
    key = load_or_create_host_key(host_key)
    _server_log(app, log_file)
    try:
        server = EmbeddedSftpServer(root, key, access, host=host, port=port)
    except OSError as exc:  # the port taken, or not ours to bind: this machine's set-up (exit 5), not the command line
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}", code="server.listen",
                          hint="choose another --port, or stop what is listening there") from exc
    app.emit({"host": server.host, "port": server.port, "root": str(root), "host_key_fingerprint": server.fingerprint,
              "drop_folders": folders},
             f"serving SFTP on {server.host}:{server.port} root={root}\n"
             f"host key fingerprint: {server.fingerprint}")
    app.out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@click.group("endpoints")
def endpoints() -> None:
    """Partners' drop folders and pinned host keys: from their cards, or overrides in config.json."""


@needs_home("none")  # it makes a transport-only home
@endpoints.command("add")
@click.argument("party")
@click.argument("url")
@click.option("--host-key-fingerprint", "fingerprints", multiple=True,
              help="Server host key SHA256 fingerprint, confirmed out of band (repeatable).")
@click.option("--known-hosts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="OpenSSH known_hosts file holding the server's key.")
@click.option("--identity", type=click.Path(dir_okay=False, path_type=Path),
              help="SSH client key for this partner (default: the home's keys/ssh_ed25519).")
@click.option("--backend", type=click.Choice(BACKENDS),
              help='SSH client for this partner: paramiko (in-process) or openssh (the system\'s ssh, with '
                   'post-quantum key exchange); default: config.json "sftp_backend", else paramiko.')
@click.option("--ssh-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="openssh backend: an ssh_config file to read (proxies, jump hosts); default: none.")
@output_options
@click.pass_obj
def endpoints_add(app: App, party: str, url: str, fingerprints: tuple[str, ...], known_hosts: Path | None,
                  identity: Path | None, backend: str | None, ssh_config: Path | None) -> None:
    """Add or replace PARTY's endpoint URL (sftp://user@host:port/path or file:///path)."""
    parse_url(url)
    fprs = tuple(check_fingerprint(f.strip()) for f in fingerprints)
    if ssh_config and backend != "openssh":
        raise UsageError("--ssh-config is read only by the openssh backend", code="endpoint.ssh-config",
                         hint="add --backend openssh, or leave out --ssh-config")
    ep = Endpoint(party, url, fprs, known_hosts.resolve() if known_hosts else None,
                  identity.resolve() if identity else None, backend=backend,
                  ssh_config=ssh_config.resolve() if ssh_config else None)
    ConfigEndpoints(app.home).add(ep)
    out = {"party": party, "url": url, "host_key_fingerprints": list(fprs)}
    if backend:
        out["backend"] = backend
    app.emit(out, f"endpoint for {party}: {url}" + (f" (via {backend})" if backend else ""))


@needs_home("set-up")
@endpoints.command("list")
@output_options
@click.pass_obj
def endpoints_list(app: App) -> None:
    """Show every partner's endpoint in effect, where it comes from (card or config), and our own."""
    rows = DirectoryEndpoints(app.home).effective()

    def human() -> str:
        if not rows:
            return "no endpoints: no partners, no overrides, and no SFTP endpoint on our own card"
        lines = []
        for e in rows:
            src = {"own": "our own drop folder (our card)", "card": "partner's card",
                   "config": "config override"}[e["source"]]
            via = f" via {e['backend']}" if e.get("backend") else ""
            line = f"{e['party']:12} {e['url'] or '-'}  [{src}{via}]  {' '.join(e['host_key_fingerprints']) or '-'}"
            if e.get("card_url"):
                line += f"\n{'':12} (overrides the card's {e['card_url']})"
            if e.get("problem"):
                line += f"\n{'':12} problem: {e['problem']}"
            lines.append(line)
        return "\n".join(lines)

    app.emit({"endpoints": rows}, human)


@needs_home("set-up")
@endpoints.command("remove")
@click.argument("party")
@output_options
@click.pass_obj
def endpoints_remove(app: App, party: str) -> None:
    """Remove PARTY's endpoint override from config.json (its card's endpoint applies again)."""
    removed = ConfigEndpoints(app.home).remove(check_party(party))
    now = next((e for e in DirectoryEndpoints(app.home).effective() if e["party"] == party), None)
    if now is None:
        after = f"{party} is not a partner, so no endpoint is in effect for it"
    elif now.get("problem"):
        after = f"{party} now has no usable endpoint: {now['problem']}"
    else:
        after = f"now in effect: {now['url']} (from {'its card' if now['source'] == 'card' else 'our card'})"
    app.emit({"removed": {"party": party, "url": removed.url}, "now": now},
             f"removed the override for {party} ({removed.url}); {after}")


@needs_home("none")  # it makes the SSH client key, and the home if need be
@endpoints.command("ssh-key")
@output_options
@click.pass_obj
def endpoints_ssh_key(app: App) -> None:
    """Create this home's SSH client key if missing (encrypted) and print its public key line.

    The line ends with our party id (`ssh-ed25519 AAAA... LA:919`), so a partner pastes it as it
    is into the authorized_keys file of `laxchange serve-sftp --authorized-keys` (which knows
    whose key it is from that comment) or of OpenSSH (which ignores it).
    """
    app.home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = ensure_ssh_identity(app.home, default_passphrase_source())
    store = KeyStore(app.home)
    party = store.ring().party if store.exists() else None
    entry = authorized_keys_line(line, party) if party else line
    if party is None:
        app.warn("laxchange: warning: this home has no party id yet (`laxchange init`): for `serve-sftp "
                 "--authorized-keys`, the partner ends the line with our party id instead of 'laxchange'")
    app.emit({"public_key": entry, "party": party, "path": str(app.home.ssh_client_key)}, entry)
