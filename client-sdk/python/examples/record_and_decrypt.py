"""Quick start: record three sessions against a local blindsight-server as an app, then score
them and decrypt the results as the key holder.

Start a server first (any terminal):

    BLINDSIGHT_ADMIN_TOKEN=change-me blindsight-server serve --min-cohort 2

then run this with the `blindsight` package installed (README.md, "Install"):

    BLINDSIGHT_ADMIN_TOKEN=change-me python client-sdk/python/examples/record_and_decrypt.py

Keys are written to ./bs-keys (the keystore is encrypted under BLINDSIGHT_PASSPHRASE).
"""

import copy
import json
import os
import pathlib
import sys

import blindsight

URL = os.environ.get("BLINDSIGHT_URL", "http://127.0.0.1:8080")
ADMIN_TOKEN = os.environ["BLINDSIGHT_ADMIN_TOKEN"]
PASSPHRASE = os.environ.get("BLINDSIGHT_PASSPHRASE", "example passphrase, change me")
HERE = pathlib.Path(__file__).resolve().parent
EXAMPLE = json.loads((HERE.parents[2] / "docs" / "session-example.json").read_text())

# The operator creates a tenant; its tokens are shown only this once.
tenant = blindsight.Admin.connect(URL, ADMIN_TOKEN).create_tenant("Quick start clinic")
tokens, tenant_id = tenant["tokens"], tenant["tenant_id"]

# The key holder generates a key set (the secret keys go straight into the keystore, never
# into Python), opens the keystore and registers the public bundle.
keys = blindsight.keygen(pathlib.Path("bs-keys"), PASSPHRASE)
clinic = blindsight.KeyHolder.open(URL, tokens["keyholder"], tenant_id, keys["keystore"], PASSPHRASE)
clinic.register(keys["public"])
print(f"key set {keys['key_id']}, manifest fingerprint {keys['fingerprint']}")

# The app pins the fingerprint and records three sessions: features extracted, encrypted,
# proven and sealed on the device.
app = blindsight.Recorder.connect(URL, tokens["ingest"], tenant_id, keys["key_id"], keys["fingerprint"])
for i, (before, after) in enumerate([(3, 5), (6, 6), (2, 7)]):
    session = copy.deepcopy(EXAMPLE)
    session.update(record_id=f"quickstart-{i}", mood_before=before, mood_after=after)
    try:
        stored = app.record(session)
    except blindsight.InvalidSessionError as e:
        sys.exit(f"session {i}: field {e.field}: {e.reason}")
    print(f"recorded {stored['record_id']} (seq {stored['seq']})")

# The key holder scores them on ciphertext, waits, and decrypts.
job = clinic.score(select={"cohort": EXAMPLE["cohort"]})
clinic.wait(job["job_id"], progress=lambda j: print(f"  {j['status']}: {j['progress_done']}/{j['progress_total']}"))
for row in clinic.results(job["job_id"]):
    print(f"{row['record_id']}: score {row['score']}, tier {row['tier']}")

# Aggregates over the cohort (the tenant's minimum cohort applies).
try:
    agg = clinic.aggregate({"aggregates": [{"op": "count"}, {"op": "mean", "field": "mood_change"}]})
    clinic.wait(agg["job_id"])
    for row in clinic.results(agg["job_id"]):
        print(row["aggregate"], row.get("mean", row.get("count")))
except blindsight.ApiError as e:
    print(f"aggregate refused: {e.problem_type} ({e.status}): {e.detail}")

print("transcript of quickstart-0:", clinic.open_transcript("quickstart-0"))
