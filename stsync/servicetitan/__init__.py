"""The ServiceTitan API v2 client: OAuth client credentials, rate limit, retries, feed iterators."""
