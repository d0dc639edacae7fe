"""PostgreSQL: the repository layer, versioned migrations, and a throwaway server for demos and tests."""
