"""Publishing from the desk, without services: whatever stops the publish after the change
is reported as "changed in the registry, not published" (audited, exit 1), and one publish
at a time per site holds the site's publish lock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli
from console.desk import Desk, NotPublished
from console.log import CentralLog
from console.users import add_user
from console.web_context import BrokerAccess
from provisioning.broker import password_hash
from provisioning.publish import publishing
from provisioning.registry import Registry
from tests.provisioning.test_passes_unit import NOW, site

__all__ = ["site"]  # the provisioning tests' site: four people, spare card 07

NOBODY = BrokerAccess("127.0.0.1", 9, "test-site", "console")  # nothing listens on port 9


def with_operator(site_dir: Path) -> Path:
    registry = Registry(site_dir / "registry.db")
    try:
        registry.add_account("operator", "operator", password_hash("operator-password"))
    finally:
        registry.close()
    (site_dir / "accounts").mkdir(exist_ok=True)
    (site_dir / "accounts" / "operator.password").write_text("operator-password")
    return site_dir


def query(site_dir: Path, sql: str) -> list[tuple[object, ...]]:
    registry = Registry(site_dir / "registry.db")
    try:
        return list(registry.db.execute(sql).fetchall())
    finally:
        registry.close()


def test_a_site_without_devices_is_changed_and_reported_not_published(
    site: Path, log: CentralLog
) -> None:
    registry = Registry(site / "registry.db")
    registry.db.execute("DELETE FROM devices")
    registry.db.conn.commit()
    registry.close()
    desk = Desk(site, NOBODY, log, NOW.timestamp, publisher="operator")
    with pytest.raises(NotPublished, match="changed in the registry, not published") as failed:
        desk.card("guard1", "card.lost", "S002", None)
    assert "no devices to publish to" in str(failed.value)
    assert "run edge-provision publish" in str(failed.value)
    assert query(site, "SELECT status FROM cards WHERE staff_no = 'S002'") == [("lost",)]
    rows = log.db.execute("SELECT username, action, detail FROM audit").fetchall()
    assert rows[-1][:2] == ("guard1", "card.lost not published")
    assert "no devices to publish to" in rows[-1][2]


def test_the_terminal_says_not_published_with_exit_1(site: Path, tmp_path: Path) -> None:
    with_operator(site)
    log_path = tmp_path / "log.db"
    log = CentralLog(log_path)
    add_user(log, "guard1", "guard", "guard-password-1", by="test")
    log.close()
    password = tmp_path / "password"
    password.write_text("guard-password-1")
    args = ["card", "lost", "--staff-no", "S002", "--db", str(log_path), "--user", "guard1"]
    args += ["--password-file", str(password), "--site-dir", str(site), "--broker-port", "9"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "card.lost: staff S002: card " in result.stderr
    assert "changed in the registry, not published: " in result.stderr
    assert "card.lost refused" not in result.stderr
    assert query(site, "SELECT status FROM cards WHERE staff_no = 'S002'") == [("lost",)]


def test_a_desk_publish_waits_for_the_sites_publish_lock(site: Path, log: CentralLog) -> None:
    desk = Desk(with_operator(site), NOBODY, log, NOW.timestamp, publisher="operator")
    failures: list[Exception] = []

    def act() -> None:
        try:
            desk.card("guard1", "card.lost", "S002", None)
        except NotPublished as error:
            failures.append(error)

    acting = threading.Thread(target=act)
    with publishing(site):  # `edge-provision publish` (or another desk action) is running
        acting.start()
        # The change is made; the build and send wait (without the lock this refused
        # publish ends at once: nothing listens on port 9).
        acting.join(2.0)
        assert acting.is_alive()
        assert query(site, "SELECT value FROM settings WHERE key = 'version'") == []
    acting.join(30)
    assert not acting.is_alive()
    assert len(failures) == 1
    assert query(site, "SELECT value FROM settings WHERE key = 'version'") == [("1",)]


def test_a_publish_the_broker_never_took_leaves_no_base(site: Path, log: CentralLog) -> None:
    desk = Desk(with_operator(site), NOBODY, log, NOW.timestamp, publisher="operator")
    with pytest.raises(NotPublished, match="not published"):
        desk.card("guard1", "card.lost", "S002", None)
    assert query(site, "SELECT value FROM settings WHERE key = 'version'") == [("1",)]
    # v1 was built full but never reached the broker: no delta may be built on it.
    assert query(site, "SELECT device FROM credential_bases") == []
