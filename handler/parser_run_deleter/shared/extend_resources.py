"""Extend's deletable resource types, per API version: the path each is deleted and read at, the id prefixes that
name it, and whether its objects carry custom metadata (which the metadata ownership policy needs).

Extend has no bulk delete and no cascade: each resource is deleted at its own ``DELETE /{resource}/{id}``. The
table follows Extend's API reference for 2025-04-21 and 2026-02-09 (docs/api.md lists it).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

API_2025: Final = "2025-04-21"
API_2026: Final = "2026-02-09"


class Resource(StrEnum):
    """A resource type, named by its path segment in Extend's API (and in this service's)."""

    PARSER_RUNS = "parser_runs"  # 2025-04-21's name for parse runs
    PARSE_RUNS = "parse_runs"
    EXTRACT_RUNS = "extract_runs"
    CLASSIFY_RUNS = "classify_runs"
    SPLIT_RUNS = "split_runs"
    EDIT_RUNS = "edit_runs"
    WORKFLOW_RUNS = "workflow_runs"
    PROCESSOR_RUNS = "processor_runs"  # 2025-04-21 only; 2026-02-09 replaced it with extract runs
    FILES = "files"


RESOURCES: Final[Mapping[str, tuple[Resource, ...]]] = {
    API_2025: (Resource.PARSER_RUNS, Resource.PROCESSOR_RUNS, Resource.WORKFLOW_RUNS, Resource.FILES),
    API_2026: (
        Resource.PARSE_RUNS,
        Resource.EXTRACT_RUNS,
        Resource.CLASSIFY_RUNS,
        Resource.SPLIT_RUNS,
        Resource.EDIT_RUNS,
        Resource.WORKFLOW_RUNS,
        Resource.FILES,
    ),
}

# Id prefixes, longest first where one begins another. Both versions' parse-run prefixes name the parse run: ids
# made before a version change keep their prefix.
_PREFIXES: Final[Mapping[str, tuple[tuple[str, Resource], ...]]] = {
    API_2025: (
        ("workflow_run_", Resource.WORKFLOW_RUNS),
        ("parser_run_", Resource.PARSER_RUNS),
        ("file_", Resource.FILES),
        ("dpr_", Resource.PROCESSOR_RUNS),
        ("exr_", Resource.PROCESSOR_RUNS),
        ("pr_", Resource.PARSER_RUNS),
    ),
    API_2026: (
        ("workflow_run_", Resource.WORKFLOW_RUNS),
        ("parser_run_", Resource.PARSE_RUNS),
        ("splr_", Resource.SPLIT_RUNS),
        ("file_", Resource.FILES),
        ("exr_", Resource.EXTRACT_RUNS),
        ("clr_", Resource.CLASSIFY_RUNS),
        ("edr_", Resource.EDIT_RUNS),
        ("pr_", Resource.PARSE_RUNS),
    ),
}

# The run types: each accepts custom metadata at creation and returns it on GET (2026-02-09; the metadata policy
# needs that version), and names the file it was made from. Files carry no custom metadata.
_RUNS: Final = frozenset(RESOURCES[API_2026] + RESOURCES[API_2025]) - {Resource.FILES}
_WITH_METADATA: Final = _RUNS
_WITH_SOURCE_FILE: Final = _RUNS
# The runs Extend can cancel while they are processing (POST /{resource}/{id}/cancel): all but edit runs.
_CANCELLABLE: Final = _RUNS - {Resource.EDIT_RUNS}


class UnknownResource(ValueError):
    """The resource type is not one this deployment's Extend API version has; the message says which it has."""


def parse_run_resource(api_version: str) -> Resource:
    """The parse run's resource under ``api_version``: ``parse_runs`` from 2026-02-09, ``parser_runs`` before."""
    return Resource.PARSE_RUNS if api_version == API_2026 else Resource.PARSER_RUNS


# Settings accept only these two versions (shared.settings), so each lookup below is by a version of the table.


def resources_of(api_version: str) -> tuple[Resource, ...]:
    return RESOURCES[api_version]


def resolve_resource(name: str, api_version: str) -> Resource:
    """The resource a caller named, as ``api_version`` has it. Either parse-run name works under either version:
    Extend's migration guide says 2026-02-09's ``/parse_runs`` *replaced* ``/parser_runs``, the same runs at a new
    path, so a caller of the old path keeps working (docs/api.md). Raises ``UnknownResource``."""
    if name in (Resource.PARSER_RUNS, Resource.PARSE_RUNS):
        return parse_run_resource(api_version)
    for resource in resources_of(api_version):
        if resource.value == name:
            return resource
    names = ", ".join(resource.value for resource in resources_of(api_version))
    raise UnknownResource(f"{name[:64]!r} is not a resource type of Extend API {api_version}: one of {names}")


def resource_for_id(item_id: str, api_version: str) -> Resource | None:
    """The resource an id names by its prefix, None for a prefix Extend does not use under ``api_version``."""
    for prefix, resource in _PREFIXES[api_version]:
        if item_id.startswith(prefix) and len(item_id) > len(prefix):
            return resource
    return None


def known_prefixes(api_version: str) -> str:
    return ", ".join(prefix for prefix, _ in _PREFIXES[api_version])


def carries_metadata(resource: Resource) -> bool:
    """Whether the resource's GET returns the custom metadata the metadata ownership policy reads."""
    return resource in _WITH_METADATA


def has_cancel(resource: Resource) -> bool:
    """Whether Extend cancels a processing item of this type (``POST /{resource}/{id}/cancel``)."""
    return resource in _CANCELLABLE


def has_source_file(resource: Resource) -> bool:
    """Whether the resource is a run whose GET names its source file (``file.id``)."""
    return resource in _WITH_SOURCE_FILE
