"""`stsync sync` (placeholder)."""


def sync() -> None:
    """Mirror ServiceTitan into PostgreSQL."""
