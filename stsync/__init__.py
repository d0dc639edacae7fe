"""stsync: a PostgreSQL mirror of a ServiceTitan tenant, and GoHighLevel driven from it."""

__version__ = "0.1.0"
