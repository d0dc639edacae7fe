"""Logging for cron and for people: one line per event on stderr; JSON when stderr is not a TTY."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from stsync.masking import mask_dsn


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.levelno >= logging.ERROR:
            doc["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(doc, ensure_ascii=False)


class _MaskSecrets(logging.Filter):
    """A last guard: a database password that reached a message (a driver's text, say) is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_dsn(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup(level: str = "INFO", fmt: str = "auto", debug: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_MaskSecrets())
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("stsync")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else level.upper())
    root.propagate = False
    # httpx's own records name whole URLs (a webhook URL is a secret): stsync.http logs each request instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
