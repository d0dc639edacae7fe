"""The stages stsync reasons in, and how each pipeline maps them to the stages its location really has.

The push decides an opportunity's stage in stsync's own names (``SALES``, ``INSTALL``); ``ghl.pipelines``
says, per pipeline, which of the location's stages (by name or id) each one is. A pipeline the config does
not list uses the defaults of its kind, the stage names stsync has always used. ``check`` resolves every
mapped stage of the pipelines a push will touch before anything is pushed, so a stage the location lacks
stops the push with one line naming the pipeline, the stage and the config key.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from stsync.errors import ConfigError

# stsync's stages in the order an opportunity advances, with the location's stage each one is by default.
SALES: Mapping[str, str] = {
    "contacted": "Contacted",
    "appointment_scheduled": "Appointment Scheduled",
    "proposal_sent": "Proposal Sent",
    "follow_up": "Estimate Follow-up",
    "lost": "Estimate Lost",  # a lost estimate may still be won later: lost comes before sold
    "sold": "Job Sold",
}
INSTALL: Mapping[str, str] = {
    # A canceled job's opportunity is abandoned where it began; like a lost estimate it comes first, so a
    # protected stage (a completed install) is never left for it, and a rebooked job moves it on.
    "canceled": "Scheduled",
    "scheduled": "Scheduled",
    "in_progress": "InProgress",
    "hold": "Hold",
    "completed": "Completed",
}
DEFAULTS: Mapping[str, Mapping[str, str]] = {"sales": SALES, "install": INSTALL}
PROTECTED_DEFAULT = ("sold", "lost")


def norm(name: str) -> str:
    """Stage, pipeline and field names compare case- and whitespace-insensitively."""
    return " ".join(name.split()).casefold()


def default_kind(pipeline: str, install_pipeline: str) -> Literal["sales", "install"]:
    """A pipeline's kind when ``ghl.pipelines`` does not say: install for ``ghl.install_pipeline``, else sales."""
    return "install" if norm(pipeline) == norm(install_pipeline) else "sales"


def stsync_stage(name: str) -> str | None:
    """``name`` as one of stsync's stages: itself, or the stage whose default it is (``Job Sold`` → ``sold``,
    so configs written before the mapping keep working); None when it is neither."""
    for stages in DEFAULTS.values():
        if name in stages:
            return name
    for stages in DEFAULTS.values():
        for stage, default in stages.items():
            if norm(default) == norm(name):
                return stage
    return None


@dataclass(frozen=True)
class PipelineStages:
    """One pipeline's mapping: ``pipeline`` as business units name it, its kind, stsync stage → the location's
    stage name or id."""

    pipeline: str
    kind: str  # 'sales' | 'install'
    stages: tuple[tuple[str, str], ...]
    mapped: frozenset[str] = frozenset()  # the stages ghl.pipelines maps (the others keep their defaults)

    @classmethod
    def of(cls, pipeline: str, kind: str, mapped: Mapping[str, str] | None = None) -> PipelineStages:
        stages = {**DEFAULTS[kind], **(mapped or {})}
        return cls(pipeline, kind, tuple((s, stages[s]) for s in DEFAULTS[kind]), frozenset(mapped or ()))

    @functools.cached_property
    def _targets(self) -> dict[str, str]:
        return dict(self.stages)

    def target(self, stage: str) -> str:
        """The location's stage (name or id) for stsync's ``stage``."""
        return self._targets[stage]

    def stage_of(self, name: str | None, stage_id: str | None = None) -> str | None:
        """stsync's stage for one of the location's stages (by id or name); the first in order when several
        map to it, None when none does."""
        for stage, target in self.stages:
            if (stage_id and target == stage_id) or (name and norm(target) == norm(name)):
                return stage
        return None

    def key(self, stage: str) -> str:
        return f"ghl.pipelines.{self.pipeline}.stages.{stage}"


class _Pipelines(Protocol):
    async def pipeline(self, name_or_id: str) -> dict[str, Any]: ...


def find_stage(pipeline: Mapping[str, Any], target: str) -> Mapping[str, Any] | None:
    """The stage of a GHL pipeline document whose id is ``target``, else whose name is (normalised)."""
    stages = [s for s in pipeline.get("stages") or [] if isinstance(s, dict)]
    return next((s for s in stages if s.get("id") == target), None) or next(
        (s for s in stages if norm(str(s.get("name", ""))) == norm(target)), None
    )


# Stages the push never moves an opportunity to by itself: their defaults need not exist in a location.
UNUSED = frozenset({"follow_up"})


async def problems(
    client: _Pipelines,
    mappings: Iterable[PipelineStages],
    location: str,
    used: Mapping[str, set[str]] | None = None,
) -> list[ConfigError]:
    """Every stage of ``mappings`` the location lacks: those the config maps, and of the defaults those ``used``
    says a push will move opportunities to (by pipeline; without it, every stage the push can reach). Each
    error names the stage, its pipeline, its config key and the stages the pipeline has; a missing pipeline is
    one error."""
    found: list[ConfigError] = []
    for mapping in mappings:
        try:
            doc = await client.pipeline(mapping.pipeline)  # ConfigError naming the pipeline when absent
        except ConfigError as exc:
            found.append(exc)
            continue
        wanted = used.get(mapping.pipeline, set()) if used is not None else set(dict(mapping.stages)) - UNUSED
        for stage, target in mapping.stages:
            if stage not in mapping.mapped and stage not in wanted:
                continue
            if find_stage(doc, target) is None:
                has = ", ".join(repr(s.get("name")) for s in doc.get("stages") or [] if isinstance(s, dict))
                where = mapping.key(stage) if stage in mapping.mapped else f"{mapping.key(stage)}, the default"
                found.append(
                    ConfigError(
                        f"GHL pipeline '{doc.get('name')}' of location {location} has no stage '{target}' "
                        f"(stsync's {stage}; {where}); it has: {has or 'none'}. Map it under ghl.pipelines "
                        "(`stsync ghl pipelines --mapping` prints a start)"
                    )
                )
    return found


async def check(
    client: _Pipelines,
    mappings: Iterable[PipelineStages],
    location: str,
    used: Mapping[str, set[str]] | None = None,
) -> None:
    """The first of `problems`, raised: a push stops before it moves anything to a stage that is not there."""
    found = await problems(client, mappings, location, used)
    if found:
        raise found[0]


# Words that suggest which of stsync's stages a location's stage is, for a starting mapping.
_HINTS: Mapping[str, Sequence[str]] = {
    "contacted": (r"contact", r"new", r"lead"),
    "appointment_scheduled": (r"appointment", r"booked", r"scheduled"),
    "proposal_sent": (r"proposal", r"estimate sent", r"quote", r"sent", r"estimate"),
    "follow_up": (r"follow",),
    "lost": (r"lost", r"dismiss", r"declin", r"reject"),
    "sold": (r"sold", r"won", r"closed", r"sale"),
    "scheduled": (r"schedul", r"booked"),
    "in_progress": (r"progress", r"working", r"started"),
    "hold": (r"hold", r"paus", r"wait"),
    "completed": (r"complet", r"done", r"finish"),
    "canceled": (r"cancel",),
}


def starting_mapping(pipeline: Mapping[str, Any], kind: str) -> dict[str, tuple[str | None, str]]:
    """A mapping to start from: stsync stage → (the location's stage name or None, how it was chosen:
    'default', 'guessed' or 'none')."""
    names = [str(s.get("name")) for s in pipeline.get("stages") or [] if isinstance(s, dict)]
    out: dict[str, tuple[str | None, str]] = {}
    for stage, default in DEFAULTS[kind].items():
        exact = next((n for n in names if norm(n) == norm(default)), None)
        if exact is not None:
            out[stage] = (exact, "default")
            continue
        guess = next((n for hint in _HINTS[stage] for n in names if re.search(hint, n, re.IGNORECASE)), None)
        out[stage] = (guess, "guessed") if guess is not None else (None, "none")
    return out
