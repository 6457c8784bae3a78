"""Retries for transient transport failures: exponential backoff with jitter, bounded in time.

The wrapper reconnects between attempts. It is safe because every operation in the contract is
idempotent when repeated after an unknown outcome (put finds its own file, delete ignores a
missing file, move finds the file already moved).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from laxchange.errors import TransientTransportError, TransportError
from laxchange.transport.base import (
    DoneResults,
    GetItem,
    GetResults,
    Listing,
    Progress,
    PutItem,
    PutResults,
    RemoteFile,
    Transport,
)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` in all; no new attempt starts once `budget` seconds have passed since the first."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    budget: float = 40.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Equal jitter: half the exponential step fixed, half random, so retries spread out."""
        step: float = min(self.max_delay, self.base_delay * (2 ** (retry - 1)))
        return step / 2 + rng.uniform(0, step / 2)


OnRetry = Callable[[int, TransportError, float], None]


class RetryingTransport:
    """A Transport that opens its inner transport lazily and reopens it after transient failures."""

    def __init__(self, factory: Callable[[], Transport], policy: RetryPolicy | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None,
                 on_retry: OnRetry | None = None) -> None:
        self.factory = factory
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.monotonic = monotonic
        self.rng = rng or random.Random()  # noqa: S311  retry jitter, not cryptography
        self.on_retry = on_retry
        self._inner: Transport | None = None
        self.connects = 0
        #: Some connection made here logged in with our previous SSH key only (`SftpTransport.used_previous_identity`):
        #: the partner has not added the key `keys rotate --ssh` made, and will refuse us once it is pruned.
        self.used_previous_identity = False
        #: some connection made here was opened (logged in): what `used_previous_identity` is about
        self.logged_in = False

    def __enter__(self) -> RetryingTransport:
        self.open()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _call(self, op: Callable[[Transport], T]) -> T:
        start = self.monotonic()
        retry = 0
        while True:
            try:
                inner = self._inner
                if inner is None:
                    inner = self.factory()
                    self.connects += 1
                    inner.open()
                    self._took(inner)
                return op(inner)
            except TransientTransportError as exc:
                self._drop()
                retry += 1
                delay = self.policy.delay(retry, self.rng)
                if retry >= self.policy.attempts or self.monotonic() - start + delay > self.policy.budget:
                    exc.details.setdefault("attempts", retry)
                    raise
                if self.on_retry:
                    self.on_retry(retry, exc, delay)
                self.sleep(delay)

    def _took(self, inner: Transport) -> None:
        """Use `inner`, opened, from now on, and note which of our SSH keys it logged in with."""
        self._inner = inner
        self.logged_in = True
        # only SFTP transports have an SSH key to fall back on; a local folder (or a test's fake) has none
        self.used_previous_identity |= bool(getattr(inner, "used_previous_identity", False))

    def _drop(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()

    def open(self) -> None:
        self._call(lambda t: None)

    def close(self) -> None:
        self._drop()

    def list(self, folder: str = "") -> Listing:
        return self._call(lambda t: t.list(folder))

    def put(self, local: Path, name: str, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> RemoteFile:
        return self._call(lambda t: t.put(local, name, folder=folder, sha256=sha256, progress=progress))

    def put_many(self, items: Sequence[PutItem], *, folder: str = "") -> PutResults:
        """Repeated whole after a reconnect: what was delivered is found there and counts as delivered."""
        return self._call(lambda t: t.put_many(items, folder=folder))

    def get(self, name: str, local: Path, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> int:
        return self._call(lambda t: t.get(name, local, folder=folder, sha256=sha256, progress=progress))

    def get_many(self, items: Sequence[GetItem], *, folder: str = "") -> GetResults:
        """Repeated whole after a reconnect: a file already in the inbox with the same bytes counts as fetched."""
        return self._call(lambda t: t.get_many(items, folder=folder))

    def move(self, name: str, to_folder: str, *, folder: str = "") -> None:
        self._call(lambda t: t.move(name, to_folder, folder=folder))

    def move_many(self, names: Sequence[str], to_folder: str, *, folder: str = "") -> DoneResults:
        """Repeated whole after a reconnect: a file already moved is found there and counts as moved."""
        return self._call(lambda t: t.move_many(names, to_folder, folder=folder))

    def delete(self, name: str, *, folder: str = "") -> None:
        self._call(lambda t: t.delete(name, folder=folder))

    def delete_many(self, names: Sequence[str], *, folder: str = "") -> DoneResults:
        """Repeated whole after a reconnect: a file already gone counts as deleted."""
        return self._call(lambda t: t.delete_many(names, folder=folder))

    def probe(self, folder: str = "") -> int | None:
        return self._call(lambda t: t.probe(folder))
