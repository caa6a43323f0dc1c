"""Read-only commands work on a home the user may read but not write (root's, shared)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import snapshot
from tests.scenarios.helpers import NOBODY, as_user, assert_clean_error, shared_home
from trustwire.errors import StoreError
from trustwire.pki.ca import CertKind
from trustwire.pki.inventory import Inventory
from trustwire.pki.store import Home


def test_list_show_and_ca_show_as_a_user_who_cannot_write(inter_home: Home) -> None:
    inter_home.issue("alice", kind=CertKind.CLIENT)
    with shared_home(inter_home.root, owner=0) as copy:  # root's: others read, only root writes
        before = snapshot(copy)
        listed = as_user(NOBODY, "--home", copy, "cert", "list", "--json")
        assert listed.code == 0, listed.err
        assert [r["name"] for r in json.loads(listed.out)] == ["alice"]
        shown = as_user(NOBODY, "--home", copy, "cert", "show", "alice")
        assert shown.code == 0 and "CN=alice" in shown.out, shown.err
        ca = as_user(NOBODY, "--home", copy, "ca", "show", "--json")
        assert ca.code == 0, ca.err
        summary = json.loads(ca.out)
        assert summary["certificates"]["valid"] == 1 and summary["key_encrypted"] is None
        human = as_user(NOBODY, "--home", copy, "ca", "show")
        assert human.code == 0 and "not readable by you" in human.out, human.err
        refused = as_user(NOBODY, "--home", copy, "cert", "issue", "bob", "--client")
        assert_clean_error(refused, 1)
        assert snapshot(copy) == before  # nothing written, no journal left behind
        assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in inter_home.root.iterdir())


def test_a_read_only_inventory_cannot_be_written(home: Home) -> None:
    with Inventory(home.index_path, read_only=True) as inventory:
        assert inventory.all() == []
        with pytest.raises(StoreError, match="could not write the inventory"), \
                inventory.transaction() as db:
            inventory.next_crl_number(db)
