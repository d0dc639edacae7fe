"""Secrets out of text: the password of a database URL in any shape, and GHL inbound webhook URLs.

Used wherever a value from the configuration may reach an operator: `config show`, `bu list`, error
messages and log records. Masking works on text that is not a valid URL too (a SQLAlchemy-style
``postgresql+psycopg://``, a leading space, a key=value string with a missing ``=``), since a malformed
value is exactly the one that ends up in an error message.
"""

from __future__ import annotations

import re

MASK = "********"

# userinfo of anything URL-like: scheme://user:password@host; the password runs to the last @ before the path.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^/\s]*@")
# password=value in a query string or a key=value string.
_KV_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)")
# In a connection string (not a message about one), also "password value" with its = missing.
_LOOSE_PASSWORD = re.compile(r"(?i)(\bpassword\s*=?\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)")


def mask_dsn(text: str, *, conninfo: bool = False) -> str:
    """``text`` with every database password in it replaced by ********; ``conninfo`` when ``text`` is the
    connection string itself, however malformed."""
    kv = _LOOSE_PASSWORD if conninfo else _KV_PASSWORD
    return kv.sub(rf"\g<1>{MASK}", _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text))


_URL = re.compile(r"(?i)\b(https?://[^/\s?#]+)[^\s\"'<>]*")


def mask_webhook(url: str | None) -> str | None:
    """A webhook URL with everything after its host masked: whoever has the path can trigger the workflow."""
    if url is None:
        return None
    match = _URL.match(url.strip())
    return f"{match.group(1)}/{MASK}" if match else MASK


def mask_urls(text: str) -> str:
    """``text`` with the path and query of every http(s) URL in it masked (for messages about webhooks)."""
    return _URL.sub(rf"\g<1>/{MASK}", text)
