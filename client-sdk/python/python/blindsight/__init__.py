"""Blindsight: privacy-preserving analytics for mental-health platforms, from Python.

The Blindsight client SDK (Rust: ``blindsight-client``) as a Python package. Sessions are
encrypted with TFHE, proven in zero knowledge and sealed on the device; the server computes
on ciphertext; only the key holder decrypts. The secret keys never become Python objects:
:class:`KeyHolder` holds an opened keystore inside the native module.

- :class:`Recorder` (an app, with an ingest token): ``record(session)``,
  ``record_training(session)``, and ``build_envelope(session)`` without HTTP.
- :class:`KeyHolder` (the clinic, with a keyholder token and a keystore): ``register``,
  ``score``, ``aggregate``, ``wait`` with a progress callback, ``results`` (a list of dicts),
  ``results_frame`` (a pandas DataFrame), ``open_transcript``.
- :class:`Auditor` (compliance, with an auditor token): ``verify()`` returns the report.
- :class:`Admin` (the operator): ``create_tenant``.
- :func:`keygen`: a new key set into a passphrase-encrypted keystore.

Errors are the classes of :mod:`blindsight.errors`, all :class:`BlindsightError`.

Example::

    import blindsight

    app = blindsight.Recorder.connect(url, ingest_token, "northside", key_id, fingerprint)
    stored = app.record(session)          # a dict, e.g. from docs/session-example.json

    clinic = blindsight.KeyHolder.open(url, keyholder_token, "northside",
                                       "keys/ks_….keystore", passphrase)
    job = clinic.score()
    clinic.wait(job["job_id"], progress=lambda j: print(j["status"]))
    for row in clinic.results(job["job_id"]):
        print(row["record_id"], row["score"], row["tier"])
"""

from . import errors
from ._native import Admin, Auditor, KeyHolder, Recorder, __version__, describe_bundle, keygen
from .errors import (
    ApiError,
    AuditError,
    BlindsightError,
    CryptoError,
    InvalidInputError,
    InvalidSessionError,
    JobError,
    KeystoreError,
    PinMismatchError,
    UnreachableError,
    WaitTimeoutError,
)

__all__ = [
    "__version__",
    "Recorder",
    "KeyHolder",
    "Auditor",
    "Admin",
    "keygen",
    "describe_bundle",
    "errors",
    "BlindsightError",
    "ApiError",
    "UnreachableError",
    "InvalidInputError",
    "InvalidSessionError",
    "PinMismatchError",
    "KeystoreError",
    "JobError",
    "WaitTimeoutError",
    "CryptoError",
    "AuditError",
]
