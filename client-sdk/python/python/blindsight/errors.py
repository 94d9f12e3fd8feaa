"""The exceptions of the Blindsight SDK.

Every error the SDK raises is a :class:`BlindsightError`; the subclass says what kind of
problem it is and carries its details as attributes (never key material, plaintext or a
token). The native module (``blindsight._native``) raises these classes.

::

    BlindsightError
    ├── ApiError                 the server refused the request (problem type, HTTP status)
    │   └── UnreachableError     the server could not be reached
    ├── InvalidInputError        an argument that cannot be used (the field is named)
    │   └── InvalidSessionError  a session value that cannot be recorded
    ├── PinMismatchError         the key set's manifest is not the pinned one
    ├── KeystoreError            wrong passphrase, not a keystore, another key set's keystore
    ├── JobError                 a job that is not finished, failed, or whose output is wrong
    ├── WaitTimeoutError         a job did not finish in time (also a TimeoutError)
    ├── CryptoError              any other cryptographic failure
    └── AuditError               evidence or an audit key that cannot be used
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

__all__ = [
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


class BlindsightError(Exception):
    """Base class of every error the SDK raises.

    ``message`` is the SDK's explanation (also ``str(error)``); the other attributes depend
    on the subclass and are always present on it (``None`` where they do not apply).
    """

    message: str

    def __init__(self, message: str, **attributes: Any) -> None:
        super().__init__(message)
        self.message = message
        for name, value in attributes.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ApiError(BlindsightError):
    """The server refused the request, or its answer was not understood.

    Attributes:
        problem_type: the problem type's slug (``"forbidden"``, ``"proof-invalid"``,
            ``"cohort-too-small"``, …; ``docs/API.md`` lists them), or ``None`` when the
            server did not answer with a problem document.
        status: the HTTP status, or ``None`` when there was no answer.
        detail: the server's explanation.
        fields: field errors as ``[{"field": ..., "reason": ...}]`` (empty: the server's
            problem documents name no fields; session fields are checked on the device before
            anything is sent, see :class:`InvalidSessionError`).
        same_content: for ``record-exists``, whether the stored record is the same one.
    """

    problem_type: Optional[str] = None
    status: Optional[int] = None
    detail: Optional[str] = None
    fields: List[Dict[str, str]] = []
    same_content: Optional[bool] = None


class UnreachableError(ApiError, ConnectionError):
    """The server could not be reached (``status`` and ``problem_type`` are ``None``).

    Attributes:
        url: the server's base URL.
    """

    url: Optional[str] = None


class InvalidInputError(BlindsightError, ValueError):
    """An argument that cannot be used: a value out of range, missing, of the wrong type or
    unknown.

    Attributes:
        field: the field's name, e.g. ``"mood_before"``, ``"phq9_9"`` (the ninth PHQ-9
            answer) or ``"cssrs.plan"``; ``None`` when the input is not JSON at all.
        reason: what is wrong with it.
        fields: ``[{"field": field, "reason": reason}]``.
    """

    field: Optional[str] = None
    reason: Optional[str] = None
    fields: List[Dict[str, str]] = []


class InvalidSessionError(InvalidInputError):
    """A session that cannot be recorded; nothing was encrypted or sent."""


class PinMismatchError(BlindsightError):
    """The key set's manifest does not have the pinned fingerprint: the app bundle is refused
    (a server cannot swap keys under an app).

    Attributes:
        component: what did not match (``"key manifest"``).
        expected: the fingerprint that was pinned.
        found: the fingerprint of what the server sent.
    """

    component: Optional[str] = None
    expected: Optional[str] = None
    found: Optional[str] = None


class KeystoreError(BlindsightError):
    """A keystore that cannot be used: a wrong passphrase (or a modified file), a file that is
    not a keystore, one that already exists where a new one would be written, or another key
    set's keystore for a job.

    Attributes:
        path: the keystore's path, when a file was involved.
    """

    path: Optional[str] = None


class JobError(BlindsightError):
    """A job whose results cannot be had: not finished yet, failed on the server, or an output
    that does not match what the job asked for (nothing is reported from it).

    Attributes:
        job_id: the job.
        status: its status (``"queued"``, ``"running"``, ``"failed"``, …), when known.
        reason: the server's or the SDK's reason.
    """

    job_id: Optional[str] = None
    status: Optional[str] = None
    reason: Optional[str] = None


class WaitTimeoutError(BlindsightError, TimeoutError):
    """A job did not finish within the time given; it keeps running on the server.

    Attributes:
        job_id: the job.
        status: its status when the wait ended.
        done: steps done.
        total: steps in all (0 until known).
    """

    job_id: Optional[str] = None
    status: Optional[str] = None
    done: Optional[int] = None
    total: Optional[int] = None


class CryptoError(BlindsightError):
    """A cryptographic check or operation failed (a malformed bundle, a proof, a seal)."""


class AuditError(BlindsightError):
    """Evidence or an audit key that cannot be used as it is."""
