"""A publish validates each device configuration once per content: a kept entry is used only
for the very bytes it was made from, under the same validator, and a kept file that does not
read back as written is ignored."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from firmware_config.errors import ConfigError
from firmware_config.loader import load_config
from provisioning import config_facts
from provisioning.config_facts import CACHE_FILE, ConfigFacts, DeviceFacts
from provisioning.credential_sets import group_masks

EXAMPLE = Path(__file__).parents[2] / "firmware_config" / "examples" / "security-gate.toml"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "gate.toml").write_bytes(EXAMPLE.read_bytes())
    config_facts.forget()
    return tmp_path


def facts_of(site: Path) -> tuple[DeviceFacts, int]:
    """Read the gate's facts as a fresh process would (nothing in memory); return how many
    configurations were validated in full."""
    config_facts.forget()
    kept = ConfigFacts(site)
    found = kept.facts(site / "devices" / "gate.toml")
    kept.save()
    return found, kept.read


def test_facts_are_the_configurations_and_are_validated_once_per_content(site: Path) -> None:
    config = site / "devices" / "gate.toml"
    expected = DeviceFacts.of(load_config(config))
    assert expected.doors
    assert expected.zones
    assert expected.anti_passback
    assert facts_of(site) == (expected, 1)
    assert facts_of(site) == (expected, 0)  # from SITE/.config-facts.json
    assert (site / CACHE_FILE).stat().st_mode & 0o777 == 0o600
    text = config.read_text()
    config.write_text(text.replace('anti_passback = "hard"', 'anti_passback = "soft"'))
    changed, read = facts_of(site)
    assert read == 1
    assert changed == DeviceFacts.of(load_config(config)) != expected


def test_an_invalid_configuration_is_refused_every_time_even_after_a_valid_one(
    site: Path,
) -> None:
    config = site / "devices" / "gate.toml"
    facts_of(site)
    config.write_text(config.read_text().replace('role = "gate"', 'role = "gaet"'))
    for _ in range(2):
        with pytest.raises(ConfigError, match="role"):
            facts_of(site)


@pytest.mark.parametrize(
    "damage",
    [
        lambda body: b"not json",
        lambda body: body[: len(body) // 2],
        lambda body: body.replace(b'"keypads":false', b'"keypads":"no"'),
        lambda body: body.replace(b'"role":"gate"', b'"role":7'),
        lambda body: body.replace(b'"anti_passback":[[', b'"anti_passback":[["x"],['),
        lambda body: body.replace(b'"validator":"', b'"validator":"0'),
        lambda body: json.dumps([1, 2]).encode(),
    ],
)
def test_a_damaged_or_foreign_kept_file_is_ignored_and_the_configuration_read_again(
    site: Path, damage: object
) -> None:
    expected, _ = facts_of(site)
    body = (site / CACHE_FILE).read_bytes()
    assert b'"keypads":false' in body
    assert b'"role":"gate"' in body
    (site / CACHE_FILE).write_bytes(damage(body))  # type: ignore[operator]
    assert facts_of(site) == (expected, 1)


def test_each_groups_mask_counts_the_cards_holding_any_of_the_groups() -> None:
    rng = random.Random(7)
    groups = [f"g{n}" for n in range(8)]
    people = [frozenset(rng.sample(groups, rng.randint(1, 3))) for _ in range(500)]
    combinations: dict[frozenset[str], int] = {}
    for held in people:
        combinations[held] = combinations.get(held, 0) + 1
    masks = group_masks((json.dumps(sorted(g)), n) for g, n in combinations.items())
    for _ in range(50):
        wanted = set(rng.sample(groups, rng.randint(1, 4)))
        union = 0
        for group in wanted:
            union |= masks.get(group, 0)
        assert union.bit_count() == sum(1 for held in people if held & wanted)
