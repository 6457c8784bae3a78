"""Moving package files to and from partners: SFTP (paramiko or the system's OpenSSH client) and local
folders, one contract."""

from laxchange.transport.base import Listing, Progress, RemoteFile, Transport, check_name, name_problem
from laxchange.transport.endpoints import Endpoint, EndpointResolver, StaticEndpoints, parse_url
from laxchange.transport.hostkeys import fingerprint, verify_host_key
from laxchange.transport.identity import (
    authorized_keys_line,
    create_ssh_identity,
    ensure_ssh_identity,
    identity_loader,
    load_ssh_identity,
)
from laxchange.transport.local import LocalFolderTransport
from laxchange.transport.openssh import OpenSshTransport, check_ssh_endpoint
from laxchange.transport.ops import (
    PROCESSED,
    FileResult,
    PartyProgress,
    PartyResult,
    Runner,
    check_endpoint,
    collect,
    part_journal,
    send,
    sharing,
    transport_factory,
)
from laxchange.transport.retry import RetryingTransport, RetryPolicy
from laxchange.transport.sftp import LinkShare, SftpSettings, SftpTransport

__all__ = [
    "PROCESSED",
    "Endpoint",
    "EndpointResolver",
    "FileResult",
    "LinkShare",
    "Listing",
    "LocalFolderTransport",
    "OpenSshTransport",
    "PartyProgress",
    "PartyResult",
    "Progress",
    "RemoteFile",
    "RetryPolicy",
    "RetryingTransport",
    "Runner",
    "SftpSettings",
    "SftpTransport",
    "StaticEndpoints",
    "Transport",
    "authorized_keys_line",
    "check_endpoint",
    "check_name",
    "check_ssh_endpoint",
    "collect",
    "create_ssh_identity",
    "ensure_ssh_identity",
    "fingerprint",
    "identity_loader",
    "load_ssh_identity",
    "name_problem",
    "parse_url",
    "part_journal",
    "send",
    "sharing",
    "transport_factory",
    "verify_host_key",
]
