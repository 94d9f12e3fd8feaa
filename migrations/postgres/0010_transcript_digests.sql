-- Records bind their sealed transcript into their proof (record proof binding v3): the
-- transcript's SHA-256 (64 hex digits) is stored beside it, so workers re-verifying a proof and
-- auditors reading records through the API have what the proof is bound to without the
-- transcript itself. NULL when the record has no transcript, and for records stored before this
-- migration (proven under binding v2, which does not cover the transcript). Described in
-- docs/STORAGE.md; the binding in docs/FORMATS.md.

ALTER TABLE records ADD COLUMN sealed_transcript_digest TEXT;
