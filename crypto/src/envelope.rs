//! The versioned, self-describing envelope that frames everything that travels over HTTP,
//! sits in the database or is written to disk.
//!
//! Layout (all integers big-endian), format version 1:
//!
//! | field          | size            | notes                                              |
//! |----------------|-----------------|----------------------------------------------------|
//! | magic          | 4               | `BLSE`                                             |
//! | format version | 2               | `1`                                                |
//! | kind           | 1               | [`Kind`]                                           |
//! | parameter set  | 1 + n (n ≤ 128) | must equal [`crate::PARAMETER_SET_ID`]             |
//! | key id         | 1 + n (n ≤ 64)  | `[A-Za-z0-9_-]`, may be empty only for kinds that have no key |
//! | metadata       | 4 + n           | UTF-8 JSON, ≤ [`limits::METADATA`]                 |
//! | payload        | 8 + n           | ≤ the kind's limit                                 |
//!
//! Nothing may follow the payload. Decoding checks every length against the bytes actually
//! present before slicing, so it never panics and never allocates more than the input.

use crate::codec::limits;
use crate::params::{PARAMETER_SET_ID, check_parameter_set};
use crate::{Error, Result};

/// The four bytes every envelope starts with.
pub const MAGIC: [u8; 4] = *b"BLSE";
/// The only envelope format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

const MAX_PARAM_ID_LEN: usize = 128;
const MAX_KEY_ID_LEN: usize = 64;

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $label:literal, $limit:expr;)*) => {
        /// What an envelope carries.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Kind {
            $($(#[$doc])* $name = $code,)*
        }

        impl Kind {
            /// Every kind, in code order.
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];

            fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some(Kind::$name),)*
                    _ => None,
                }
            }

            /// A short human-readable name, used in errors.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$name => $label,)*
                }
            }

            /// The largest payload accepted for this kind.
            pub fn payload_limit(self) -> u64 {
                match self {
                    $(Kind::$name => $limit,)*
                }
            }
        }
    };
}

kinds! {
    /// A key manifest (JSON).
    Manifest = 1, "key manifest", limits::MANIFEST;
    /// A compressed server (evaluation) key.
    ServerKey = 2, "server key", limits::SERVER_KEY;
    /// A compact public key.
    CompactPublicKey = 3, "compact public key", limits::COMPACT_PUBLIC_KEY;
    /// The ZK common reference string.
    Crs = 4, "CRS", limits::CRS;
    /// The key holder's X25519 public key for transcripts.
    TranscriptKey = 5, "transcript public key", 32;
    /// Everything the server needs: manifest, public key, CRS, transcript key, server key.
    PublicBundle = 6, "public bundle", limits::SERVER_KEY + limits::CRS + (2 << 20);
    /// What an app needs: the public bundle without the server key.
    AppBundle = 7, "app bundle", limits::CRS + (2 << 20);
    /// An encrypted record: proven list and sealed transcript, with its metadata.
    Record = 8, "record", limits::LANE_LIST + limits::TRANSCRIPT + 4096;
    /// A compressed list of encrypted results.
    ResultList = 9, "result list", limits::RESULT_LIST;
    /// A transcript sealed to the key holder.
    SealedTranscript = 10, "sealed transcript", limits::TRANSCRIPT + 256;
    /// A passphrase-encrypted keystore.
    Keystore = 11, "keystore", limits::CLIENT_KEY + 4096;
}

/// A decoded envelope, borrowing from the input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// What the payload is.
    pub kind: Kind,
    /// The key set the payload belongs to (empty for kinds that belong to none).
    pub key_id: &'a str,
    /// Kind-specific JSON metadata (may be empty).
    pub metadata: &'a [u8],
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Frames `payload` as an envelope of `kind` under the pinned parameter set.
    pub fn encode(kind: Kind, key_id: &str, metadata: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
        check_key_id(key_id)?;
        if metadata.len() as u64 > limits::METADATA {
            return Err(Error::TooLarge {
                what: "envelope metadata",
                size: metadata.len() as u64,
                limit: limits::METADATA,
            });
        }
        if payload.len() as u64 > kind.payload_limit() {
            return Err(Error::TooLarge {
                what: kind.name(),
                size: payload.len() as u64,
                limit: kind.payload_limit(),
            });
        }
        let mut out = Vec::with_capacity(
            4 + 2
                + 1
                + 1
                + PARAMETER_SET_ID.len()
                + 1
                + key_id.len()
                + 4
                + metadata.len()
                + 8
                + payload.len(),
        );
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.push(kind as u8);
        // Both lengths were bounded above (a const of 60-odd bytes, a checked key id).
        out.push(PARAMETER_SET_ID.len() as u8);
        out.extend_from_slice(PARAMETER_SET_ID.as_bytes());
        out.push(key_id.len() as u8);
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(&(metadata.len() as u32).to_be_bytes());
        out.extend_from_slice(metadata);
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        out.extend_from_slice(payload);
        Ok(out)
    }

    /// Decodes an envelope of any kind, refusing other parameter sets and format versions.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new("envelope", bytes);
        let header = read_header(&mut r)?;
        let payload = r.take_u64(header.payload_len)?;
        r.finish()?;
        Ok(Envelope {
            kind: header.kind,
            key_id: header.key_id,
            metadata: header.metadata,
            payload,
        })
    }

    /// Checks the start of an envelope of `kind` as it arrives, before the rest is read: the
    /// header [`Envelope::decode`] reads (magic, format version, kind, parameter set, key id,
    /// metadata, declared payload size against the kind's limit). `Ok(None)`: `prefix` is
    /// too short to tell the size yet; `Ok(Some(n))`: the whole envelope is `n` bytes. A prefix
    /// that is not the start of the magic is refused from its first byte.
    pub fn declared_size(prefix: &[u8], kind: Kind) -> Result<Option<u64>> {
        let head = prefix.len().min(MAGIC.len());
        if prefix[..head] != MAGIC[..head] {
            return Err(Error::Malformed {
                what: "envelope",
                reason: "does not start with the Blindsight envelope magic".into(),
            });
        }
        let mut r = Reader::new("envelope", prefix);
        match read_header(&mut r) {
            Ok(header) => {
                if header.kind != kind {
                    return Err(Error::WrongKind {
                        expected: kind.name(),
                        found: header.kind.name(),
                    });
                }
                let read = (prefix.len() - r.rest().len()) as u64;
                Ok(Some(read + header.payload_len))
            }
            Err(_) if r.truncated => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Decodes an envelope and checks its kind and, when given, its key id.
    pub fn decode_expecting(bytes: &'a [u8], kind: Kind, key_id: Option<&str>) -> Result<Self> {
        let envelope = Self::decode(bytes)?;
        envelope.expect(kind, key_id)?;
        Ok(envelope)
    }

    /// Checks this envelope's kind and, when given, its key id.
    pub fn expect(&self, kind: Kind, key_id: Option<&str>) -> Result<()> {
        if self.kind != kind {
            return Err(Error::WrongKind {
                expected: kind.name(),
                found: self.kind.name(),
            });
        }
        match key_id {
            Some(expected) if !crate::ct_eq(expected.as_bytes(), self.key_id.as_bytes()) => {
                Err(Error::WrongKeyId {
                    expected: expected.to_owned(),
                    found: self.key_id.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Parses the metadata as the JSON of `T` (unknown fields refused by `T`'s serde attributes).
    pub fn metadata_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(self.metadata).map_err(|e| Error::Malformed {
            what: "envelope metadata",
            reason: e.to_string(),
        })
    }
}

/// An envelope's header: everything before the payload, and the payload's declared length.
struct Header<'a> {
    kind: Kind,
    key_id: &'a str,
    metadata: &'a [u8],
    payload_len: u64,
}

/// Reads and checks an envelope's header (magic, version, kind, parameter set, key id,
/// metadata, payload length against the kind's limit).
fn read_header<'a>(r: &mut Reader<'a>) -> Result<Header<'a>> {
    if r.take(4)? != MAGIC {
        return Err(r.malformed("does not start with the Blindsight envelope magic"));
    }
    let version = u16::from_be_bytes(r.array()?);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let code = r.array::<1>()?[0];
    let kind = Kind::from_code(code)
        .ok_or_else(|| r.malformed(&format!("unknown envelope kind {code}")))?;
    let param_len = usize::from(r.array::<1>()?[0]);
    if param_len > MAX_PARAM_ID_LEN {
        return Err(r.malformed("parameter-set id is too long"));
    }
    let param = std::str::from_utf8(r.take(param_len)?)
        .map_err(|_| r.malformed("parameter-set id is not UTF-8"))?;
    check_parameter_set(param)?;
    let key_len = usize::from(r.array::<1>()?[0]);
    let key_id =
        std::str::from_utf8(r.take(key_len)?).map_err(|_| r.malformed("key id is not UTF-8"))?;
    check_key_id(key_id)?;
    let meta_len = u64::from(u32::from_be_bytes(r.array()?));
    if meta_len > limits::METADATA {
        return Err(Error::TooLarge {
            what: "envelope metadata",
            size: meta_len,
            limit: limits::METADATA,
        });
    }
    let metadata = r.take_u64(meta_len)?;
    let payload_len = u64::from_be_bytes(r.array()?);
    if payload_len > kind.payload_limit() {
        return Err(Error::TooLarge {
            what: kind.name(),
            size: payload_len,
            limit: kind.payload_limit(),
        });
    }
    Ok(Header {
        kind,
        key_id,
        metadata,
        payload_len,
    })
}

/// Key ids are short, printable and safe to put in paths, URLs and logs.
pub fn check_key_id(key_id: &str) -> Result<()> {
    let ok = key_id.len() <= MAX_KEY_ID_LEN
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Malformed {
            what: "key id",
            reason: "must be at most 64 characters of A-Z, a-z, 0-9, '-' and '_'".into(),
        })
    }
}

/// Encodes several byte strings as one: a count (u16) then each part as length (u64) + bytes.
pub(crate) fn encode_parts(parts: &[&[u8]]) -> Vec<u8> {
    let total: usize = parts.iter().map(|p| p.len() + 8).sum();
    let mut out = Vec::with_capacity(2 + total);
    // Callers pass a fixed handful of parts.
    out.extend_from_slice(&(parts.len() as u16).to_be_bytes());
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Decodes what [`encode_parts`] wrote, requiring exactly `expected` parts.
pub(crate) fn decode_parts<'a>(
    what: &'static str,
    bytes: &'a [u8],
    expected: usize,
) -> Result<Vec<&'a [u8]>> {
    let mut r = Reader::new(what, bytes);
    let count = usize::from(u16::from_be_bytes(r.array()?));
    if count != expected {
        return Err(r.malformed(&format!("expected {expected} parts, found {count}")));
    }
    let mut parts = Vec::with_capacity(expected);
    for _ in 0..count {
        let len = u64::from_be_bytes(r.array()?);
        parts.push(r.take_u64(len)?);
    }
    r.finish()?;
    Ok(parts)
}

/// A bounds-checked cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
    /// A read asked for more bytes than were left.
    truncated: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Self {
            what,
            bytes,
            truncated: false,
        }
    }

    pub(crate) fn malformed(&self, reason: &str) -> Error {
        Error::Malformed {
            what: self.what,
            reason: reason.to_owned(),
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            self.truncated = true;
            return Err(self.malformed("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn take_u64(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| self.malformed("length does not fit in memory"))?;
        self.take(n)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.malformed(&format!("{} trailing bytes", self.bytes.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_is_known_from_the_header_and_garbage_is_refused_at_once() {
        let env = Envelope::encode(Kind::PublicBundle, "ks-1", b"{}", &[7u8; 1000]).unwrap();
        let mut known = None;
        for n in 0..env.len() {
            match Envelope::declared_size(&env[..n], Kind::PublicBundle).unwrap() {
                None => assert!(
                    known.is_none(),
                    "the size was known at {known:?}, not at {n}"
                ),
                Some(size) => {
                    assert_eq!(size, env.len() as u64);
                    known.get_or_insert(n);
                }
            }
        }
        // Known once the payload length is in: well before the payload.
        assert!(known.unwrap() < 200, "{known:?}");
        assert!(Envelope::declared_size(b"P", Kind::PublicBundle).is_err());
        assert!(Envelope::declared_size(b"PK\x03\x04garbage", Kind::PublicBundle).is_err());
        let e = Envelope::declared_size(&env, Kind::Record).unwrap_err();
        assert!(matches!(e, Error::WrongKind { .. }), "{e}");
        // A declared payload over the kind's limit.
        let mut huge = env.clone();
        let at = env.len() - 1000 - 8;
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        let e = Envelope::declared_size(&huge, Kind::PublicBundle).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    }
}
