"""The ServiceTitan access token, kept on disk between runs.

ServiceTitan issues tokens for 900 s and throttles its token endpoint, so its docs ask clients to cache them.
stsync has no resident process: a timer starts a run every few minutes, and each would otherwise spend a round
trip to the identity server before its first page. The cache is one small file per (identity server, client id,
client secret), named by a hash of the three, mode 0600 in a 0700 directory, and replaced by rename, so a
reader sees a whole file or none.

It is only a cache. A file that cannot be read, parsed or trusted (owned by someone else, or readable by
others) is ignored and overwritten; a directory that cannot be written turns the cache off for the run; a
token the API refuses is dropped from it. The token itself never appears in a log, a repr or an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from stsync.files import write_atomically

log = logging.getLogger("stsync.servicetitan")

STALE_AFTER = 24 * 3600.0  # seconds: files of other credentials older than this are removed when a token is stored


@dataclass(frozen=True)
class CachedToken:
    value: str = field(repr=False)
    expires_at: float  # seconds since the epoch: the cache outlives the process, so not monotonic time


class TokenCache:
    """The cached token of one set of client credentials, in ``directory``."""

    def __init__(self, directory: Path, auth_base: str, client_id: str, client_secret: str) -> None:
        self.directory = directory
        digest = hashlib.sha256("\0".join((auth_base, client_id, client_secret)).encode()).hexdigest()
        self.path = directory / f"servicetitan-token-{digest[:32]}.json"
        self._writable = True

    def load(self, margin: float) -> CachedToken | None:
        """The cached token if it is still good for ``margin`` seconds, else None."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None  # no cache yet, or a symlink planted in its place
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.info("token cache %s ignored: not private to this user (mode %o)", self.path, info.st_mode & 0o777)
                return None
            raw = os.read(fd, 64 * 1024)
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            doc = orjson.loads(raw)
            token = CachedToken(str(doc["access_token"]), float(doc["expires_at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if not token.value or token.expires_at - time.time() <= margin:
            return None
        return token

    def store(self, token: CachedToken) -> None:
        """Write ``token`` for the next runs; a failure only turns the cache off for this run."""
        if not self._writable:
            return
        body = orjson.dumps({"access_token": token.value, "expires_at": token.expires_at})
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(self.path, body, prefix=".servicetitan-token-")  # created 0600
        except OSError as exc:
            self._writable = False
            log.info("token cache off for this run: cannot write %s: %s", self.directory, exc.strerror or exc)
            return
        self._prune()

    def _prune(self) -> None:
        """Remove token files of other credentials or hosts that have long expired (a rotated secret, a
        sandbox on another port), so the directory does not grow without bound."""
        stale = time.time() - STALE_AFTER
        try:
            for entry in self.directory.iterdir():
                ours = entry.name.startswith(("servicetitan-token-", ".servicetitan-token-"))
                if ours and entry.name != self.path.name and entry.lstat().st_mtime < stale:
                    entry.unlink()
        except OSError:
            pass  # another run pruned it first, or the directory is not ours to tidy

    def discard(self, token: str) -> None:
        """Forget ``token`` (the API refused it), unless another run has already replaced it."""
        cached = self.load(margin=float("-inf"))
        if cached is not None and cached.value == token:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                self._writable = False  # the next store would fail the same way


def default_directory(env: Mapping[str, str]) -> Path | None:
    """Where the cache lives unless configured: systemd's CacheDirectory=, else the XDG cache directory."""
    if env.get("CACHE_DIRECTORY"):
        return Path(env["CACHE_DIRECTORY"].split(":")[0])
    if env.get("XDG_CACHE_HOME", "").startswith("/"):  # the XDG spec: relative paths are to be ignored
        return Path(env["XDG_CACHE_HOME"]) / "stsync"
    if env.get("HOME"):
        return Path(env["HOME"]) / ".cache" / "stsync"
    return None
