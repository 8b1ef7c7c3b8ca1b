"""Topic filters: the console, the operators' tools and the broker's ACL spell them here."""

from __future__ import annotations

import pytest

from edge.link import topics


def test_site_wide_filters_cover_every_device() -> None:
    assert topics.status_filter("edge", "s") == "edge/s/+/status"
    assert topics.events_filter("edge", "s") == "edge/s/+/events/#"
    assert topics.occupancy_filter("city/edge", "s") == "city/edge/s/+/occupancy/#"
    assert topics.replies_filter("edge", "s") == "edge/s/+/reply/#"
    assert topics.replies_filter("edge", "s", account="edge-sim") == "edge/s/+/reply/edge-sim"
    assert topics.command_branch_filter("edge", "s") == "edge/s/+/cmd/#"
    assert topics.credentials_filter("edge", "s") == "edge/s/+/credentials"


def test_filters_of_one_device_match_its_own_topics() -> None:
    assert topics.status_filter("edge", "s", "d") == topics.status("edge", "s", "d")
    assert topics.credentials_filter("edge", "s", "d") == topics.credentials("edge", "s", "d")
    assert topics.events_filter("edge", "s", "d") == "edge/s/d/events/#"
    assert topics.command_branch_filter("edge", "s", "d") == "edge/s/d/cmd/#"
    assert topics.reply("edge", "s", "d", "console") == "edge/s/d/reply/console"
    assert topics.reply("edge", "s", "d", "c").startswith(topics.reply_prefix("edge", "s", "d"))
    assert topics.command("edge", "s", "d", "ping").startswith(
        topics.command_prefix("edge", "s", "d")
    )


@pytest.mark.parametrize("bad", ["#", "a/b", "", "Upper"])
def test_filters_refuse_a_level_that_would_widen_them(bad: str) -> None:
    for build in (
        lambda: topics.status_filter("edge", bad),
        lambda: topics.events_filter("edge", "s", bad),
        lambda: topics.replies_filter("edge", "s", account=bad),
    ):
        with pytest.raises(topics.TopicError, match="cannot be a topic level"):
            build()


@pytest.mark.parametrize("root", ["edge/+", "#", "edge//x"])
def test_filters_refuse_a_root_with_a_wildcard_or_an_empty_level(root: str) -> None:
    with pytest.raises(topics.TopicError, match="topic root level"):
        topics.events_filter(root, "s")


def test_device_levels_read_a_topic_back_under_any_root() -> None:
    topic = topics.event("kamakura/edge", "s", "gate-1", "access")
    assert topics.device_levels(topic, "kamakura/edge", "s") == ["gate-1", "events", "access"]
    assert topics.device_levels(topics.status("edge", "s", "d"), "edge", "s") == ["d", "status"]
    assert topics.device_levels("edge/other/d/status", "edge", "s") is None
    assert topics.device_levels("edge/s", "edge", "s") is None
