"""One error tree for stsync, grouped by what the caller should do, and one exit-code enum.

Core code raises these; only the CLI maps them to exit codes (see ``exit_code_for``).
Messages are one line, name the key/field/row at fault, and never contain secrets.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in the README. Values follow BSD sysexits where one fits."""

    OK = 0
    PARTIAL = 1  # the run finished, but some records were quarantined or some items failed
    USAGE = 2  # bad command line
    DATA = 65  # bad input data (a malformed CSV row, a checksum mismatch in migrations)
    UNAVAILABLE = 69  # ServiceTitan, GHL or the database could not be reached or refused us
    SOFTWARE = 70  # a bug: an unexpected exception
    TEMPFAIL = 75  # another run holds the lock, or a temporary failure: try again later
    NOPERM = 77  # the database role lacks a privilege (the message names it and the object)
    CONFIG = 78  # the configuration is invalid or incomplete


class StsyncError(Exception):
    """Base of every error stsync raises on purpose."""

    exit_code: ExitCode = ExitCode.SOFTWARE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- fatal: a person has to fix something -------------------------------------------------


class UsageError(StsyncError):
    """The command line asks for something that does not exist (an unknown stream name)."""

    exit_code = ExitCode.USAGE


class ConfigError(StsyncError):
    """The configuration is invalid: unknown key, bad value, missing secret."""

    exit_code = ExitCode.CONFIG


class AuthError(StsyncError):
    """Credentials were refused (OAuth client, app key, GHL token)."""

    exit_code = ExitCode.CONFIG


class AccessDenied(AuthError):
    """An API refused one endpoint (HTTP 403) although the credentials work elsewhere: a missing scope, most
    often. ``module`` is the API module (accounting, crm, …) whose endpoint refused."""

    def __init__(self, message: str, module: str) -> None:
        super().__init__(message)
        self.module = module


class PrivilegeError(StsyncError):
    """The database role lacks a privilege; the message names the privilege and the object."""

    exit_code = ExitCode.NOPERM


class MigrationError(StsyncError):
    """A migration cannot be applied, or an applied one was edited afterwards."""

    exit_code = ExitCode.DATA


class DataError(StsyncError):
    """Input data (a file, a CSV row) is malformed; the message names the row and field."""

    exit_code = ExitCode.DATA


# --- retry: it may work later ---------------------------------------------------------------


class UnavailableError(StsyncError):
    """A remote service or the database could not be reached, or kept failing after retries."""

    exit_code = ExitCode.UNAVAILABLE


class DatabaseUnavailable(UnavailableError):
    """PostgreSQL could not be reached, or the connection broke mid-run."""


class ApiUnavailable(UnavailableError):
    """An HTTP API kept failing (5xx, 429, timeouts, resets) beyond the retry budget."""


class Outage(UnavailableError):
    """A service is down for the whole run: every part of the run stops with this one error."""


class ApiOutage(Outage, ApiUnavailable):
    """An HTTP API failed for every request for a while (see ``stsync.retry.Breaker``)."""


class DatabaseOutage(Outage, DatabaseUnavailable):
    """PostgreSQL cannot be reached, or the connection was lost: every stream stops."""


LOCKED_MESSAGE = "another stsync sync is running for this tenant; exiting without syncing"


class LockedError(StsyncError):
    """Another run holds the advisory lock; this run did nothing."""

    exit_code = ExitCode.TEMPFAIL


class TemporaryError(StsyncError):
    """A temporary condition (daily API budget exhausted, continuation token rejected twice)."""

    exit_code = ExitCode.TEMPFAIL


# --- skip and record: one bad record never stops a run ------------------------------------------


class RecordError(StsyncError):
    """One record cannot be converted; it is quarantined and the run goes on."""

    exit_code = ExitCode.PARTIAL


def exit_code_for(exc: BaseException) -> ExitCode:
    """Map any exception to the exit code the CLI returns."""
    if isinstance(exc, StsyncError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.TEMPFAIL
    return ExitCode.SOFTWARE
