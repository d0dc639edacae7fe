"""Deterministic fault injection: rules that fire on "the next N matching requests" and/or at a seeded rate.

See the package docstring (``stsync.sandbox``) for the JSON format. Rules are evaluated in order; latency
rules add up, and the first matching rule of another kind decides the request's fate.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = ("latency", "status", "rate_limit", "drop", "truncate", "malformed")


@dataclass
class Rule:
    kind: str
    count: int | None = None  # None: unlimited
    rate: float = 1.0
    path: str | None = None
    status: int = 503
    retry_after: int | None = 1
    ms: int = 0
    jitter_ms: int = 0
    keep: float = 0.5
    resource: str | None = None
    fields: str = "id"
    value: Any = "x"
    rng: random.Random = field(default_factory=random.Random)

    def matches(self, path: str) -> bool:
        """The rule's ``path`` occurs in the request's; one ending in ``$`` must end it (``/opportunities$`` is
        the create, not ``/opportunities/pipelines``)."""
        if self.path is None:
            return True
        if self.path.endswith("$"):
            return path.endswith(self.path[:-1])
        return self.path in path

    def fire(self) -> bool:
        """Decide (and account) whether this matching rule fires for the current request."""
        if self.count is not None and self.count <= 0:
            return False
        if self.rate < 1.0 and self.rng.random() >= self.rate:
            return False
        if self.count is not None:
            self.count -= 1
        return True


def parse_rule(spec: dict[str, Any], seed: int, n: int) -> Rule:
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"fault rule {n}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    known = {
        "kind",
        "count",
        "rate",
        "path",
        "status",
        "retry_after",
        "ms",
        "jitter_ms",
        "keep",
        "resource",
        "field",
        "value",
        "seed",
    }
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"fault rule {n}: unknown keys {sorted(unknown)}")
    rule = Rule(
        kind=kind,
        count=spec.get("count"),
        rate=float(spec.get("rate", 1.0)),
        path=spec.get("path"),
        status=int(spec.get("status", 503)),
        retry_after=spec.get("retry_after", 1),
        ms=int(spec.get("ms", 0)),
        jitter_ms=int(spec.get("jitter_ms", 0)),
        keep=float(spec.get("keep", 0.5)),
        resource=spec.get("resource"),
        fields=spec.get("field", "id"),
        value=spec.get("value", "x"),
    )
    if rule.kind == "status" and rule.status not in (500, 502, 503, 504):
        raise ValueError(f"fault rule {n}: status must be 500, 502, 503 or 504")
    if rule.kind == "malformed" and not rule.resource:
        raise ValueError(f"fault rule {n}: malformed needs a resource")
    rule.rng.seed(int(spec.get("seed", seed)) * 1000 + n)
    return rule


class Faults:
    """The active fault rules of one sandbox plus the record of malformed ids served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[Rule] = []
        self.malformed_served: list[dict[str, Any]] = []
        self.token_epoch = 0  # bumped by invalidate_tokens; tokens of older epochs are rejected
        self._spec: dict[str, Any] = {}

    def set(self, spec: dict[str, Any]) -> None:
        """Replace the rules with those of `spec`; `invalidate_tokens: true` acts once, immediately."""
        if not isinstance(spec, dict):
            raise ValueError("fault spec must be a JSON object")
        seed = int(spec.get("seed", 0))
        raw = list(spec.get("rules", []))
        # Shorthand: {"latency": {"ms": 40}} or {"status": [{...}, {...}]} means rules of that kind.
        for kind in KINDS:
            if kind in spec:
                more = spec[kind] if isinstance(spec[kind], list) else [spec[kind]]
                raw += [{**r, "kind": kind} for r in more]
        unknown = set(spec) - {"seed", "rules", "invalidate_tokens", *KINDS}
        if unknown:
            raise ValueError(f"fault spec: unknown keys {sorted(unknown)}")
        rules = [parse_rule(r, seed, n) for n, r in enumerate(raw)]
        with self._lock:
            self.rules = rules
            self._spec = {k: v for k, v in spec.items() if k != "invalidate_tokens"}
            if spec.get("invalidate_tokens"):
                self.token_epoch += 1

    def clear(self) -> None:
        with self._lock:
            self.rules = []
            self._spec = {}

    def invalidate_tokens(self) -> None:
        with self._lock:
            self.token_epoch += 1

    def latency_ms(self, path: str) -> float:
        total = 0.0
        with self._lock:
            for r in self.rules:
                if r.kind == "latency" and r.matches(path) and r.fire():
                    total += r.ms + (r.rng.random() * r.jitter_ms if r.jitter_ms else 0)
        return total

    def decide(self, path: str) -> Rule | None:
        """The first non-latency, non-malformed rule that fires for this request, if any."""
        with self._lock:
            for r in self.rules:
                if r.kind in ("latency", "malformed") or not r.matches(path):
                    continue
                if r.fire():
                    return r
        return None

    def malformed_for(self, resource: str, path: str) -> Rule | None:
        with self._lock:
            for r in self.rules:
                if r.kind == "malformed" and r.resource == resource and r.matches(path) and r.fire():
                    return r
        return None

    def record_malformed(self, resource: str, id_: Any, fld: str, path: str) -> None:
        with self._lock:
            self.malformed_served.append({"resource": resource, "id": id_, "field": fld, "path": path})

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "spec": self._spec,
                "remaining": [r.count for r in self.rules],
                "malformed_served": list(self.malformed_served),
                "token_epoch": self.token_epoch,
            }
