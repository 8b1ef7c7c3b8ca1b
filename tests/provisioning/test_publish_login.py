"""Publishing with a login the broker refuses: named at once, not a silent wait per device.
Real parts: mosquitto configured by edge-provision."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.link.mqtt import LinkError
from firmware_config.model import MqttConfig
from provisioning.publish import build_all, send
from provisioning.registry import Registry
from tests.provisioning.test_publish import set_up_site, site_broker

pytestmark = pytest.mark.services  # starts mosquitto


def test_a_wrong_operator_password_is_named_before_any_publish(tmp_path: Path) -> None:
    site = set_up_site(tmp_path)
    broker = site_broker(site, tmp_path)
    try:
        wrong = tmp_path / "wrong.password"
        wrong.write_text("not-the-operator-password")
        config = MqttConfig(
            host="127.0.0.1", port=broker.port, username="operator", password_file=wrong
        )
        registry = Registry(site / "registry.db")
        try:
            built = build_all(registry, site)
        finally:
            registry.close()
        with pytest.raises(LinkError, match="refused the login as operator") as refused:
            send(config, "kamakura-city-hall", built, "operator-test", 5)
        assert "not-the-operator-password" not in str(refused.value)
    finally:
        broker.stop()
