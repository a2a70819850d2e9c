"""The DNS test servers themselves: a server that cannot do its job fails the test, never skips it."""

from __future__ import annotations

import pytest

from tests.harness import dns_servers
from tests.harness.dns_servers import HarnessError, Nsd, Rbldnsd, ask, wait_for_answer

pytestmark = pytest.mark.integration


def test_rbldnsd_reloads_a_changed_dataset_while_running() -> None:
    server = Rbldnsd()
    server.add_dataset("bl.example.test", "ip4set", "bl", ["127.0.0.2"])
    with server:
        assert ask(server.port, "7.2.0.192.bl.example.test").rcode() == 3
        server.add_entry("bl", "192.0.2.7 :127.0.0.3:added")
        assert [str(r) for rrset in ask(server.port, "7.2.0.192.bl.example.test").answer for r in rrset] == [
            "127.0.0.3"
        ]
        server.remove_entry("bl", "192.0.2.7")
        wait_for_answer(server.port, "7.2.0.192.bl.example.test", expect_listed=False, timeout=1.0)
        with pytest.raises(HarnessError):
            server.remove_entry("bl", "192.0.2.7")


def test_a_bad_dataset_line_fails_the_start() -> None:
    server = Rbldnsd()
    server.add_dataset("bl.example.test", "ip4set", "bl", ["127.0.0.2", "not-an-address"])
    with pytest.raises(HarnessError, match="invalid"):
        server.start()
    server.cleanup()


def test_a_broken_zone_fails_the_nsd_start() -> None:
    server = Nsd()
    server.add_zone("ok.test", ['@ TXT "fine"'])
    server.add_zone("bad.test", ['@ TXT "' + "x" * 300 + '"'])  # one string over 255 bytes
    with pytest.raises(HarnessError, match=r"bad\.test"):
        server.start()
    server.cleanup()


def test_a_missing_binary_fails_rather_than_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns_servers.shutil, "which", lambda name: None)
    monkeypatch.setattr(dns_servers.os.path, "exists", lambda path: False)
    server = Rbldnsd()
    server.add_dataset("bl.example.test", "ip4set", "bl", ["127.0.0.2"])
    with pytest.raises(HarnessError, match="Debian package 'rbldnsd'"):
        server.start()
    server.cleanup()
