"""Fixtures: one real ``blindsight-server`` (SQLite in a temporary directory) for the whole
session, a tenant, a key set registered with it, and one object per role."""

from __future__ import annotations

import pytest

import blindsight
from support import PASSPHRASE, Server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tenant(server):
    admin = blindsight.Admin.connect(server.url, server.admin_token)
    return admin.create_tenant("Pytest clinic", tenant_id="pytest", min_cohort_size=2)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    return blindsight.keygen(tmp_path_factory.mktemp("keys"), PASSPHRASE)


@pytest.fixture(scope="session")
def keyholder(server, tenant, keys):
    holder = blindsight.KeyHolder.open(
        server.url, tenant["tokens"]["keyholder"], "pytest", keys["keystore"], PASSPHRASE
    )
    registered = holder.register(keys["public"])
    assert registered["key_id"] == keys["key_id"]
    assert registered["manifest_fingerprint"] == keys["fingerprint"]
    return holder


@pytest.fixture(scope="session")
def recorder(server, tenant, keys, keyholder):
    # `keyholder` registered the key set: the app can load its bundle.
    return blindsight.Recorder.connect(
        server.url, tenant["tokens"]["ingest"], "pytest", keys["key_id"], keys["fingerprint"]
    )
