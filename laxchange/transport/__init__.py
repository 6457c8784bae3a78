"""Moving package files to and from partners: SFTP (paramiko) and local folders, one contract."""

from .base import Listing, Progress, RemoteFile, Transport, check_name, name_problem
from .endpoints import ConfigEndpoints, DirectoryEndpoints, Endpoint, EndpointResolver, StaticEndpoints, parse_url
from .hostkeys import fingerprint, verify_host_key
from .identity import create_ssh_identity, ensure_ssh_identity, identity_loader, load_ssh_identity
from .local import LocalFolderTransport
from .ops import PROCESSED, PartyResult, Runner, collect, send, transport_factory
from .retry import RetryingTransport, RetryPolicy
from .sftp import SftpSettings, SftpTransport

__all__ = [
    "PROCESSED", "ConfigEndpoints", "DirectoryEndpoints", "Endpoint", "EndpointResolver", "Listing", "LocalFolderTransport",
    "PartyResult", "Progress", "RemoteFile", "RetryPolicy", "RetryingTransport", "Runner", "SftpSettings",
    "SftpTransport", "StaticEndpoints", "Transport", "check_name", "collect", "create_ssh_identity",
    "ensure_ssh_identity", "fingerprint", "identity_loader", "load_ssh_identity", "name_problem", "parse_url",
    "send", "transport_factory", "verify_host_key",
]
