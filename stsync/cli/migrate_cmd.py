"""`stsync migrate` (placeholder)."""


def migrate() -> None:
    """Create or upgrade every schema from sql/."""
