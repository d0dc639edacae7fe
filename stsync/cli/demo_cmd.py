"""`stsync demo` (placeholder)."""


def demo() -> None:
    """Run the whole thing on a throwaway PostgreSQL and the sandbox."""
