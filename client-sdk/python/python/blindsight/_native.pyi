"""Type stubs of ``blindsight._native``, the Rust half of the package (pyo3).

Import from ``blindsight``; the names below are re-exported there. Every method that talks to
the server, proves, generates keys or decrypts releases the interpreter while it works, so
other Python threads keep running.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TypedDict, Union

__version__: str

#: A session as a dict (the JSON format of ``docs/session-example.json``), or its JSON text.
Session = Union[Mapping[str, Any], str, bytes]
#: Raw bytes, or the path of a file holding them.
BytesOrPath = Union[bytes, str, os.PathLike[str]]
#: A record selection: ``schema_id``, ``schema_version``, ``cohort``, ``since``, ``until``,
#: ``record_ids`` (all optional; the default is every ``session`` v1 record).
Selection = Mapping[str, Any]

class StoredRecord(TypedDict):
    record_id: str
    #: Position in the server's ingest order; None when an earlier attempt stored it.
    seq: Optional[int]
    #: SHA-256 of the stored proven list, hex; None when an earlier attempt stored it.
    proven_list_digest: Optional[str]
    #: False when this exact record had been stored by an earlier attempt (a retry).
    created: bool

class JobCreated(TypedDict):
    job_id: str
    kind: str
    records: int
    status: str

class KeyInfo(TypedDict):
    key_id: str
    #: The manifest fingerprint apps pin.
    fingerprint: str
    keystore: str
    public: str
    app: str

class Recorder:
    """An app recording sessions for one tenant under one key set.

    It holds the key set's app bundle (public material only: the compact public key, the
    CRS, the transcript public key and their manifest) and the ingest token. Nothing it holds
    decrypts, and it has no call that would.
    """

    @staticmethod
    def connect(
        url: str, ingest_token: str, tenant: str, key_id: str, pin: str, max_attempts: int = 5
    ) -> Recorder:
        """Connects to the server at ``url`` and loads the app bundle of ``key_id``.
        ``max_attempts``: how many times a request is tried in all when the server sheds load,
        rate-limits or cannot be reached (a retried upload is never stored twice).

        Raises:
            PinMismatchError: the bundle's manifest fingerprint is not ``pin``.
            ApiError: the server refused (e.g. ``problem_type == "not-found"``).
        """
    @staticmethod
    def from_app_bundle(
        app_bundle: BytesOrPath,
        tenant: str,
        pin: str,
        url: Optional[str] = None,
        ingest_token: Optional[str] = None,
        max_attempts: int = 5,
    ) -> Recorder:
        """A recorder over an app bundle the app already holds (bytes or a ``.app`` file),
        refused unless its manifest fingerprint is ``pin``. Without ``url`` it only builds
        envelopes (sans I/O)."""
    def record(self, session: Session) -> StoredRecord:
        """Extracts the lexicon features, encrypts and proves the session as a ``session`` v1
        record, seals its transcript, and uploads it.

        Raises:
            InvalidSessionError: a value is missing, unknown, of the wrong type or out of
                range; ``error.field`` names it. Nothing was encrypted or sent.
            ApiError: the server refused the record.
        """
    def record_training(self, session: Session) -> StoredRecord:
        """Records a practice session of a therapist trainee as a ``training`` v1 record
        (the format of ``docs/training-example.json``)."""
    def build_envelope(self, session: Session) -> bytes:
        """Sans I/O: the record envelope of a session (encrypted, proven, sealed), to upload
        with your own HTTP stack as ``POST /v1/records`` (``application/octet-stream``)."""
    def build_training_envelope(self, session: Session) -> bytes:
        """:meth:`build_envelope` for a training session."""
    def app_bundle(self) -> bytes:
        """The app bundle records are encrypted under, encoded (public material only)."""
    @property
    def key_id(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def fingerprint(self) -> str:
        """The key set's manifest fingerprint (the pin)."""
    @property
    def url(self) -> Optional[str]:
        """The server's base URL; None for a sans-I/O recorder."""

class KeyHolder:
    """The key holder of one tenant: its keyholder token and an opened keystore.

    The secret keys stay inside the native module; no method returns them and ``repr()``
    shows none.
    """

    @staticmethod
    def open(
        url: str,
        token: str,
        tenant: str,
        keystore: Union[str, os.PathLike[str]],
        passphrase: str,
        max_attempts: int = 5,
    ) -> KeyHolder:
        """Opens the keystore with ``passphrase`` and connects to the server (``max_attempts``
        as for :meth:`Recorder.connect`).

        Raises:
            KeystoreError: a wrong passphrase, a modified file, or not a keystore.
        """
    def register(self, public_bundle: BytesOrPath) -> Dict[str, Any]:
        """Registers a key set's public bundle (the ``.public`` file of :func:`keygen`):
        ``key_id``, ``manifest_fingerprint``, ``parameter_set``, ``created``."""
    def score(
        self, model: str = "crisis", version: int = 1, select: Optional[Selection] = None
    ) -> JobCreated:
        """Queues a risk-score job over the selected records."""
    def aggregate(
        self, query: Mapping[str, Any], select: Optional[Selection] = None
    ) -> JobCreated:
        """Queues an aggregate job, e.g. ``{"aggregates": [{"op": "count"}, {"op": "mean",
        "field": "mood_change"}]}``.

        Raises:
            InvalidInputError: the query does not parse (the field is named).
            ApiError: e.g. ``problem_type == "cohort-too-small"``.
        """
    def wait(
        self,
        job_id: str,
        progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
    ) -> Dict[str, Any]:
        """Waits until the job has succeeded or failed and returns it (``status``,
        ``progress_done``, ``progress_total``, ``error``, …). ``progress`` is called with the
        job first and whenever it changes; an exception it raises ends the wait.

        Raises:
            WaitTimeoutError: not finished within ``timeout`` seconds.
        """
    def job(self, job_id: str) -> Dict[str, Any]:
        """One job's state and progress."""
    def jobs(self) -> List[Dict[str, Any]]:
        """The tenant's jobs, newest first."""
    def records(self, cohort: Optional[str] = None) -> List[Dict[str, Any]]:
        """The tenant's records (metadata only), optionally of one cohort."""
    def results(self, job_id: str) -> List[Dict[str, Any]]:
        """Fetches a finished job's output and decrypts it.

        Risk jobs give ``{"record_id", "score", "tier"}`` per record; aggregate jobs give per
        aggregate ``aggregate`` (e.g. ``"mean(mood_change)"``), ``op``, ``field`` (where there
        is one), the value (``count``, ``sum``, ``mean``, ``value``, ``buckets`` and
        ``labels``) and ``computed_by`` (``clear``, ``lane`` or ``fhe``).

        Raises:
            JobError: the job is not finished, failed, or its output does not match it.
        """
    def results_frame(self, job_id: str) -> Any:  # pandas.DataFrame (pandas is optional)
        """:meth:`results` as a pandas DataFrame.

        Raises:
            ImportError: pandas is not installed.
        """
    def job_results(self, job_id: str) -> Dict[str, Any]:
        """The whole decrypted result as ``blindsight results --json`` prints it."""
    def open_transcript(self, record_id: str) -> str:
        """Fetches a record's sealed transcript and opens it with the keystore."""
    @property
    def key_id(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def url(self) -> str: ...

class Auditor:
    """An auditor of one tenant, holding nothing secret."""

    @staticmethod
    def connect(url: str, token: str) -> Auditor: ...
    def audit_key(self) -> Dict[str, str]:
        """The server's published audit key: ``algorithm``, ``public_key`` (hex), ``key_id``."""
    def verify(
        self, audit_keys: Optional[Sequence[str]] = None, reexecute: int = 0
    ) -> Dict[str, Any]:
        """Gathers the evidence and runs every check; returns the report (``passed``,
        ``first_failure``, ``checks``). ``audit_keys`` are hex Ed25519 public keys (or paths
        of files holding one) pinned out of band; without them the server's published key is
        trusted, which proves less."""

class Admin:
    """The operator, with the server's admin token."""

    @staticmethod
    def connect(url: str, admin_token: str) -> Admin: ...
    def create_tenant(
        self,
        name: str,
        tenant_id: Optional[str] = None,
        min_cohort_size: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Creates a tenant: ``tenant_id``, ``name``, ``min_cohort_size``, and ``tokens``
        (``keyholder``, ``ingest``, ``auditor``), shown only this once."""

def keygen(
    out_dir: Union[str, os.PathLike[str]], passphrase: str, key_id: Optional[str] = None
) -> KeyInfo:
    """Generates a key set: ``<key_id>.keystore`` (encrypted under ``passphrase``, at least
    12 characters), ``<key_id>.public`` and ``<key_id>.app`` in ``out_dir``. The secret keys
    never reach Python."""

def describe_bundle(bundle: BytesOrPath) -> Dict[str, Any]:
    """What an app bundle, public bundle or keystore holds, from decoding it: ``kind``,
    ``key_id``, ``components``, ``secret`` and (bundles) ``fingerprint``."""
