"""The sites a collector takes: edge-provision site directories, each known by its registry.

A site directory is what `edge-provision site init --dir` made: `registry.db` (whose `site`
row holds the site id) and `devices/*.toml`, the provisioned device configurations. A
collector is given a directory of such directories (`--sites-dir`), single ones
(`--site-dir`), or both, and the site ids it takes among them (`--site`; every one if none).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from console.actions import site_slug
from edge.errors import EdgeError
from edge.link.topics import TopicError, site_prefix

REGISTRY: Final = "registry.db"


class SitesError(EdgeError, ValueError):
    """The site directories or the chosen sites cannot be used; the message says how to fix it."""


def site_dirs(
    sites_dir: Path | None, single: Iterable[Path], chosen: Sequence[str] = ()
) -> dict[str, Path]:
    """Return {site id: its directory} for the chosen sites (every site found if none)."""
    found: dict[str, Path] = {}
    candidates = list(single)
    if sites_dir is not None:
        held = sorted(p for p in sites_dir.iterdir() if (p / REGISTRY).is_file())
        if not held:
            raise SitesError(
                f"{sites_dir} holds no site directory (a subdirectory with {REGISTRY}); "
                "make one with `edge-provision site init --dir` or give --site-dir"
            )
        candidates += held
    for directory in candidates:
        site = site_of(directory)
        other = found.get(site)
        if other is not None and other.resolve() != directory.resolve():
            raise SitesError(
                f"site {site} is in both {other} and {directory}; keep one directory per site"
            )
        found[site] = directory
    if not found:
        raise SitesError("no site given: use --sites-dir DIR and/or --site-dir SITE")
    missing = [site for site in chosen if site not in found]
    if missing:
        raise SitesError(
            f"--site {', '.join(missing)}: not among the site directories given "
            f"({', '.join(sorted(found))}); check the site id or add its --site-dir"
        )
    return {site: found[site] for site in (chosen or sorted(found))}


def site_of(directory: Path) -> str:
    """Return the site id a site directory's registry holds, or raise SitesError."""
    registry = directory / REGISTRY
    if not registry.is_file():
        raise SitesError(
            f"{directory} is not a site directory: it has no {REGISTRY} "
            "(edge-provision site init --dir makes one)"
        )
    site = site_slug(registry)
    if site is None:
        raise SitesError(
            f"{registry} holds no site: run `edge-provision site init` for that directory"
        )
    return usable(site, str(registry))


def usable(site: str, source: str) -> str:
    """Return `site` if it can be a topic level (as every site id must), else raise."""
    try:
        site_prefix("edge", site)
    except TopicError:
        raise SitesError(
            f"{source} names site {site[:40]!r}, not a usable site id (lower-case letters, "
            "digits and hyphens)"
        ) from None
    return site
