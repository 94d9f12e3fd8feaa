"""The Python binding against a real blindsight-server: record → score → results, aggregates,
transcripts, sans-I/O envelopes, training sessions, typed errors (a bad session names its
field, a wrong pin, a wrong passphrase, refusals carry their problem type and status), that a
recorder cannot decrypt, that secrets never show, that the interpreter is released while
proving, and the auditor's report."""

from __future__ import annotations

import copy
import re
import threading
import time

import pytest

import blindsight
from support import EXAMPLE_TRAINING, PASSPHRASE, REPO, post_record, session

TIERS = {"none", "low", "moderate", "high"}


def test_version_is_the_workspaces():
    text = (REPO / "Cargo.toml").read_text()
    block = text.split("[workspace.package]", 1)[1]
    version = re.search(r'^version\s*=\s*"([^"]+)"', block, re.M).group(1)
    assert blindsight.__version__ == version


@pytest.fixture(scope="module")
def trio(recorder, keyholder):
    """Three sessions recorded in cohort `trio`, and a risk job over them."""
    sessions = [session(f"trio-{i}", "trio", i) for i in range(3)]
    stored = [recorder.record(s) for s in sessions]
    job = keyholder.score(select={"cohort": "trio"})
    return sessions, stored, job


def test_record_score_results(recorder, keyholder, trio):
    sessions, stored, job = trio
    for s, st in zip(sessions, stored):
        assert st["record_id"] == s["record_id"]
        assert st["created"] is True
        assert isinstance(st["seq"], int)
        assert re.fullmatch(r"[0-9a-f]{64}", st["proven_list_digest"])
    # A retried upload of the same session is recognised, never a second record... but a
    # new encryption is a different record under a used id: refused with its problem type.
    with pytest.raises(blindsight.ApiError) as refused:
        recorder.record(sessions[0])
    assert refused.value.status == 409
    assert refused.value.problem_type == "record-exists"
    assert refused.value.same_content is False

    assert job["kind"] == "risk_score"
    assert job["records"] == 3
    # Not finished yet: a JobError saying so.
    try:
        keyholder.results(job["job_id"])
    except blindsight.JobError as e:
        assert e.job_id == job["job_id"]
        assert e.status in {"queued", "running"}

    seen = []
    done = keyholder.wait(job["job_id"], progress=seen.append, timeout=600, poll_interval=0.2)
    assert done["status"] == "succeeded", done
    assert seen and seen[-1]["status"] == "succeeded"
    assert all(isinstance(j, dict) and j["job_id"] == job["job_id"] for j in seen)

    rows = keyholder.results(job["job_id"])
    assert [r["record_id"] for r in rows] == [s["record_id"] for s in sessions]
    for r in rows:
        assert set(r) == {"record_id", "score", "tier"}
        assert isinstance(r["score"], int)
        assert r["tier"] in TIERS

    whole = keyholder.job_results(job["job_id"])
    assert whole["kind"] == "risk_score" and whole["records"] == 3
    assert whole["rows"] == rows


def test_results_frame(keyholder, trio):
    _, _, job = trio
    keyholder.wait(job["job_id"], timeout=600)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            keyholder.results_frame(job["job_id"])
        return
    frame = keyholder.results_frame(job["job_id"])
    assert list(frame.columns) == ["record_id", "score", "tier"]
    assert list(frame["record_id"]) == ["trio-0", "trio-1", "trio-2"]
    assert frame.shape == (3, 3)


def test_aggregate_results(keyholder, trio):
    sessions, _, _ = trio
    query = {
        "aggregates": [
            {"op": "count"},
            {"op": "mean", "field": "mood_before"},
            {"op": "sum", "field": "mood_after"},
        ]
    }
    job = keyholder.aggregate(query, select={"cohort": "trio"})
    assert job["kind"] == "aggregate"
    assert keyholder.wait(job["job_id"], timeout=600)["status"] == "succeeded"
    count, mean, total = keyholder.results(job["job_id"])
    assert count["aggregate"] == "count" and count["count"] == 3
    assert mean["aggregate"] == "mean(mood_before)" and mean["field"] == "mood_before"
    assert mean["mean"] == pytest.approx(sum(s["mood_before"] for s in sessions) / 3)
    assert mean["count"] == 3
    assert total["sum"] == sum(s["mood_after"] for s in sessions)
    assert total["computed_by"] in {"lane", "fhe"}


def test_a_wait_ends_on_timeout_or_when_its_callback_raises(keyholder, trio):
    job = keyholder.score(select={"cohort": "trio"})
    with pytest.raises(blindsight.WaitTimeoutError) as raised:
        keyholder.wait(job["job_id"], timeout=0)
    e = raised.value
    assert e.job_id == job["job_id"] and e.status in {"queued", "running"}
    assert isinstance(e, TimeoutError) and e.total >= 0

    class Stop(Exception):
        pass

    def stop(_job):
        raise Stop()

    with pytest.raises(Stop):
        keyholder.wait(job["job_id"], progress=stop, timeout=600)
    assert keyholder.wait(job["job_id"], timeout=600)["status"] == "succeeded"


def test_open_transcript(keyholder, trio):
    sessions, _, _ = trio
    assert keyholder.open_transcript("trio-1") == sessions[1]["transcript"]
    with pytest.raises(blindsight.BlindsightError, match="no record"):
        keyholder.open_transcript("no-such-record")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.update(mood_before=11), "mood_before"),
        (lambda s: s["phq9"].__setitem__(8, 7), "phq9_9"),
        (lambda s: s["phq9"].pop(), "phq9"),
        (lambda s: s.pop("mood_after"), "mood_after"),
        (lambda s: s.update(duration_min="fifty"), "duration_min"),
        (lambda s: s["cssrs"].update(plan="no"), "cssrs.plan"),
        (lambda s: s.update(diagnosis="F32"), "diagnosis"),
    ],
)
def test_bad_session_names_the_field(recorder, keyholder, change, field):
    bad = session("bad-1", "bad")
    change(bad)
    for call in (recorder.record, recorder.build_envelope):
        with pytest.raises(blindsight.InvalidSessionError) as raised:
            call(bad)
        e = raised.value
        assert e.field == field, (e.field, e.message)
        assert e.fields == [{"field": field, "reason": e.reason}]
        assert field in str(e)
        assert isinstance(e, ValueError) and isinstance(e, blindsight.BlindsightError)
    # Nothing was uploaded.
    assert keyholder.records(cohort="bad") == []


def test_wrong_pin_is_refused(server, tenant, keys, keyholder):
    with pytest.raises(blindsight.PinMismatchError) as raised:
        blindsight.Recorder.connect(
            server.url, tenant["tokens"]["ingest"], "pytest", keys["key_id"], "0" * 64
        )
    assert raised.value.expected == "0" * 64
    assert raised.value.found == keys["fingerprint"]


def test_wrong_passphrase(server, tenant, keys):
    with pytest.raises(blindsight.KeystoreError) as raised:
        blindsight.KeyHolder.open(
            server.url, tenant["tokens"]["keyholder"], "pytest", keys["keystore"], "not it at all"
        )
    assert "passphrase" in str(raised.value)
    assert raised.value.path == str(keys["keystore"])
    # Not a keystore at all (the app bundle): refused the same way.
    with pytest.raises(blindsight.KeystoreError):
        blindsight.KeyHolder.open(
            server.url, tenant["tokens"]["keyholder"], "pytest", keys["app"], PASSPHRASE
        )


def test_a_recorder_cannot_decrypt(server, tenant, keys, recorder, trio):
    _, _, job = trio
    # No such call: what decrypts belongs to KeyHolder only.
    for name in ("results", "results_frame", "job_results", "open_transcript", "score",
                 "aggregate", "decrypt", "secret", "keystore", "client_key"):
        assert not hasattr(recorder, name), name
    # The app bundle it holds is public material only, every component decoded and checked
    # against the manifest; the keystore is the only file with secrets (encrypted).
    app = blindsight.describe_bundle(recorder.app_bundle())
    assert app["kind"] == "app" and app["secret"] is False
    assert app["fingerprint"] == keys["fingerprint"]
    assert sorted(app["components"]) == sorted(
        ["key manifest", "compact public key", "CRS", "transcript public key"]
    )
    assert blindsight.describe_bundle(keys["keystore"])["secret"] is True
    # Even with the keystore, the ingest token reads no results: the server refuses.
    ingest = blindsight.KeyHolder.open(
        server.url, tenant["tokens"]["ingest"], "pytest", keys["keystore"], PASSPHRASE
    )
    with pytest.raises(blindsight.ApiError) as raised:
        ingest.results(job["job_id"])
    assert raised.value.status == 403
    assert raised.value.problem_type == "forbidden"


def test_secrets_never_show(tenant, keys, recorder, keyholder):
    for obj in (recorder, keyholder):
        text = repr(obj)
        assert PASSPHRASE not in text
        for token in tenant["tokens"].values():
            assert token not in text
    assert "keystore=opened" in repr(keyholder)
    assert not any("secret" in name or "client_key" in name for name in dir(keyholder))


def test_sans_io_envelope(server, tenant, keys, keyholder):
    offline = blindsight.Recorder.from_app_bundle(keys["app"], "pytest", keys["fingerprint"])
    assert offline.url is None and offline.key_id == keys["key_id"]
    envelope = offline.build_envelope(session("sans-io-1", "sans-io"))
    assert isinstance(envelope, bytes) and len(envelope) > 1000
    # The app's own HTTP stack uploads it.
    stored = post_record(server.url, tenant["tokens"]["ingest"], envelope)
    assert stored["record_id"] == "sans-io-1"
    assert [r["record_id"] for r in keyholder.records(cohort="sans-io")] == ["sans-io-1"]
    with pytest.raises(blindsight.BlindsightError, match="without a server URL"):
        offline.record(session("sans-io-2", "sans-io"))


def test_training_session(recorder, keyholder):
    practice = copy.deepcopy(EXAMPLE_TRAINING)
    practice["record_id"] = "training-1"
    stored = recorder.record_training(practice)
    assert stored["created"] is True
    assert len(recorder.build_training_envelope(practice)) > 1000
    bad = copy.deepcopy(practice)
    bad["scenario"] = "astrology"
    with pytest.raises(blindsight.InvalidSessionError) as raised:
        recorder.record_training(bad)
    assert raised.value.field == "scenario"


def test_refusals_carry_problem_type_and_status(keyholder):
    with pytest.raises(blindsight.ApiError) as raised:
        keyholder.aggregate({"aggregates": [{"op": "count"}]}, select={"cohort": "nobody"})
    e = raised.value
    assert isinstance(e.status, int) and 400 <= e.status < 500
    assert e.problem_type and e.detail
    assert e.fields == []
    with pytest.raises(blindsight.InvalidInputError) as raised:
        keyholder.aggregate({"aggregates": [{"op": "median", "field": "mood_before"}]})
    assert raised.value.field == "aggregates[0].op"


def test_unreachable_server(keys):
    nowhere = blindsight.KeyHolder.open(
        "http://127.0.0.1:9", "x", "pytest", keys["keystore"], PASSPHRASE, max_attempts=1
    )
    with pytest.raises(blindsight.UnreachableError) as raised:
        nowhere.jobs()
    assert raised.value.status is None and raised.value.url == "http://127.0.0.1:9"
    assert isinstance(raised.value, ConnectionError)


def test_the_interpreter_is_released_while_proving(recorder):
    done = threading.Event()
    ticks = 0

    def prove():
        recorder.build_envelope(session("gil-1", "gil"))
        done.set()

    worker = threading.Thread(target=prove)
    start = time.monotonic()
    worker.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    elapsed = time.monotonic() - start
    # Proving takes most of a second; this thread kept running all along (with the
    # interpreter held it would have got a tick in at most every 5 ms switch interval, and
    # none while the proof ran).
    assert elapsed > 0.2
    assert ticks > elapsed / 0.001 / 10, (ticks, elapsed)


def test_auditor_verifies(server, tenant, trio, keyholder):
    _, _, job = trio
    keyholder.wait(job["job_id"], timeout=600)
    auditor = blindsight.Auditor.connect(server.url, tenant["tokens"]["auditor"])
    key = auditor.audit_key()
    report = auditor.verify(audit_keys=[key["public_key"]])
    assert report["passed"] is True, report["first_failure"]
    names = {c["name"] for c in report["checks"]}
    assert {"chain", "proofs", "receipts"} <= names
