//! Records: a schema's values encrypted as one proven lane list (one bit per slot, see
//! [`crate::lane`]) whose proof is bound to the record's metadata, and the server-side checks
//! that turn it into typed FHE values for the FHE path.
//!
//! The proof's metadata is [`RecordMetadata::binding`]: a domain-separated encoding of the
//! tenant, key id, schema id and version, record id, cohort, lexicon version and recording
//! time, and the SHA-256 of the record's sealed transcript. A list proven for one record
//! therefore fails verification under any other record's metadata, so a ciphertext cannot be
//! replayed under another record id or tenant, and a record whose sealed transcript was
//! changed by one byte fails its proof.
//! See <https://docs.zama.org/tfhe-rs> ("Zero-knowledge proofs").

use serde::{Deserialize, Serialize};
use tfhe::integer::RadixCiphertext;
use tfhe::integer::ciphertext::IntegerCiphertext;
use tfhe::{
    FheUint2, FheUint2Id, FheUint4, FheUint4Id, FheUint6, FheUint6Id, FheUint8, FheUint8Id,
    FheUint10, FheUint10Id, FheUint12, FheUint12Id, FheUint14, FheUint14Id, FheUint16, FheUint16Id,
    FheUint32, FheUint32Id, ReRandomizationMetadata, Tag,
};

use crate::envelope::{Envelope, Kind, decode_parts, encode_parts};
use crate::keys::{AppBundle, KeyManifest};
use crate::lane::{ComputeKey, LaneBody, LaneList};
use crate::schema::{FieldType, RecordSchema, RecordValues, Value};
use crate::{Error, Result};

/// Who a record belongs to and what it is: the routing metadata, and what its proof and
/// transcript seal are bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordMetadata {
    /// The tenant (platform) id.
    pub tenant: String,
    /// The key set the record is encrypted under.
    pub key_id: String,
    /// The record schema's id.
    pub schema_id: String,
    /// The record schema's version.
    pub schema_version: u32,
    /// The record id, chosen by the client so retries cannot create duplicates.
    pub record_id: String,
    /// The cohort label analytics select on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// The version of the lexicon the text features were extracted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexicon_version: Option<String>,
    /// When the session was recorded, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<u64>,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Every string is checked to be at most 128 bytes by `RecordMetadata::check`.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl RecordMetadata {
    /// Checks every identifier is short and printable.
    pub fn check(&self) -> Result<()> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
        };
        let fields: [(&str, Option<&str>); 6] = [
            ("tenant", Some(&self.tenant)),
            ("schema_id", Some(&self.schema_id)),
            ("record_id", Some(&self.record_id)),
            ("cohort", self.cohort.as_deref()),
            ("lexicon_version", self.lexicon_version.as_deref()),
            ("key_id", Some(&self.key_id)),
        ];
        for (name, value) in fields {
            if let Some(v) = value
                && !ok(v)
            {
                return Err(Error::Malformed {
                    what: "record metadata",
                    reason: format!("{name} must be 1-128 characters of A-Z, a-z, 0-9 and -_.:@"),
                });
            }
        }
        crate::envelope::check_key_id(&self.key_id)
    }

    fn encode_with_domain(&self, domain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(domain);
        push_str(&mut out, &self.tenant);
        push_str(&mut out, &self.key_id);
        push_str(&mut out, &self.schema_id);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        push_str(&mut out, &self.record_id);
        for opt in [&self.cohort, &self.lexicon_version] {
            match opt {
                Some(s) => {
                    out.push(1);
                    push_str(&mut out, s);
                }
                None => out.push(0),
            }
        }
        match self.recorded_at {
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&t.to_be_bytes());
            }
            None => out.push(0),
        }
        out
    }

    /// The bytes a record's ZK proof is bound to (binding v3): the metadata under a domain
    /// that names the lane format and encoding ([`LANE_TAG`]), so a list proven for another
    /// purpose or encoding never verifies as a record, then the sealed transcript's digest
    /// ([`transcript_digest`]; a presence byte, then its 32 bytes), so a transcript changed
    /// after proving fails the proof.
    pub fn binding(&self, transcript: Option<&TranscriptDigest>) -> Vec<u8> {
        let mut out = self.encode_with_domain(&proof_domain(b"blindsight/record-proof/v3\0"));
        match transcript {
            Some(d) => {
                out.push(1);
                out.extend_from_slice(d);
            }
            None => out.push(0),
        }
        out
    }

    /// The binding of records proven before transcripts were bound (v2: the metadata alone).
    /// Stored records of that version keep verifying ([`Verifier::verify_stored_record`]);
    /// ingest accepts only [`Self::binding`].
    pub fn legacy_binding(&self) -> Vec<u8> {
        self.encode_with_domain(&proof_domain(b"blindsight/record-proof/v2\0"))
    }

    /// The associated data a record's transcript is sealed with.
    pub fn transcript_aad(&self) -> Vec<u8> {
        self.encode_with_domain(b"blindsight/transcript/v1\0")
    }

    /// Checks this metadata belongs to `schema` and the key set `key_id`.
    pub fn check_against(&self, schema: &RecordSchema, key_id: &str) -> Result<()> {
        self.check()?;
        if self.key_id != key_id {
            return Err(Error::MetadataMismatch(format!(
                "record is for key set {:?}, this key set is {key_id:?}",
                self.key_id
            )));
        }
        if self.schema_id != schema.id || self.schema_version != schema.version {
            return Err(Error::MetadataMismatch(format!(
                "record declares schema {}@{}, the schema given is {}@{}",
                self.schema_id, self.schema_version, schema.id, schema.version
            )));
        }
        Ok(())
    }
}

/// A record proof's domain: its version's prefix, then the lane tag it is bound to.
fn proof_domain(version: &[u8]) -> Vec<u8> {
    [version, LANE_TAG, b"\0"].concat()
}

/// SHA-256 of a sealed transcript, as bound into its record's proof.
pub type TranscriptDigest = [u8; 32];

/// The digest a record's proof binds for its sealed transcript: SHA-256 of the sealed bytes,
/// `None` when the record has no transcript (an empty part).
pub fn transcript_digest(sealed_transcript: &[u8]) -> Option<TranscriptDigest> {
    (!sealed_transcript.is_empty()).then(|| {
        let d = ring::digest::digest(&ring::digest::SHA256, sealed_transcript);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    })
}

/// Parses a transcript digest as stored and served (64 hex digits).
pub fn parse_transcript_digest(hex_digest: &str) -> Result<TranscriptDigest> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut out).map_err(|_| Error::Malformed {
        what: "transcript digest",
        reason: "expected 64 hex digits".into(),
    })?;
    Ok(out)
}

/// The lane tag every record proof is bound to: the lane list format, one bit per slot,
/// Δ = 2^47, t = 2^17.
pub const LANE_TAG: &[u8] = b"blindsight/lane/v1/bit-d47-t17";

/// Encrypts `values` as the schema's lane slots under the app bundle's compact public key and
/// proves, bound to `meta` and the sealed transcript's digest (seal first, then prove), that
/// every slot is a bit. Nothing is encrypted unless every value is present and in its declared
/// range (the prover does not range-check).
pub fn encrypt_record(
    bundle: &AppBundle,
    schema: &RecordSchema,
    meta: &RecordMetadata,
    values: &RecordValues,
    transcript: Option<&TranscriptDigest>,
) -> Result<LaneList> {
    let map = schema.slot_map()?;
    schema.validate()?;
    meta.check_against(schema, bundle.key_id())?;
    let ordered = schema.order_values(values)?;
    bundle.lane_key().encrypt_and_prove(
        &map.encode(&ordered),
        bundle.crs(),
        &meta.binding(transcript),
    )
}

/// Checks a lane list has exactly the schema's slot count.
pub fn check_shape(list: &LaneBody, schema: &RecordSchema) -> Result<()> {
    let expected = schema.slot_map()?.slots();
    if list.slots() != expected {
        return Err(Error::ShapeMismatch(format!(
            "the lane list holds {} slots, schema {}@{} has {expected}",
            list.slots(),
            schema.id,
            schema.version,
        )));
    }
    Ok(())
}

/// An encrypted record: its metadata, proven list and (optionally) sealed transcript, framed
/// as one envelope for upload and storage.
#[derive(Clone, Debug)]
pub struct RecordEnvelope {
    /// The record's metadata (bound into the proof and the transcript seal).
    pub metadata: RecordMetadata,
    /// The encoded proven lane list.
    pub proven_list: Vec<u8>,
    /// The sealed transcript (empty when the session had none).
    pub sealed_transcript: Vec<u8>,
}

impl RecordEnvelope {
    /// Encodes the record as an envelope.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.metadata.check()?;
        let meta = serde_json::to_vec(&self.metadata).map_err(|e| Error::Malformed {
            what: "record metadata",
            reason: e.to_string(),
        })?;
        let payload = encode_parts(&[&self.proven_list, &self.sealed_transcript]);
        Envelope::encode(Kind::Record, &self.metadata.key_id, &meta, &payload)
    }

    /// The digest its proof binds for its sealed transcript ([`transcript_digest`]).
    pub fn transcript_digest(&self) -> Option<TranscriptDigest> {
        transcript_digest(&self.sealed_transcript)
    }

    /// Decodes a record envelope: framing, metadata, and the proven list's size limit and
    /// conformance. The proof itself is checked by [`Verifier::verify_record`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let envelope = Envelope::decode_expecting(bytes, Kind::Record, None)?;
        let metadata: RecordMetadata = envelope.metadata_as()?;
        metadata.check()?;
        if metadata.key_id != envelope.key_id {
            return Err(Error::MetadataMismatch(
                "the envelope and its metadata name different key sets".into(),
            ));
        }
        let parts = decode_parts("record", envelope.payload, 2)?;
        LaneList::decode(parts[0])?;
        if !parts[1].is_empty() {
            crate::seal::SealedTranscript::decode(parts[1])?;
        }
        Ok(Self {
            metadata,
            proven_list: parts[0].to_vec(),
            sealed_transcript: parts[1].to_vec(),
        })
    }
}

/// One expanded, typed FHE value of a record. A boolean is a one-block unsigned value
/// holding 0 or 1 (tfhe offers no way to build an `FheBool` from a derived block).
#[allow(missing_docs)]
pub enum EncryptedValue {
    Bool(FheUint2),
    U2(FheUint2),
    U4(FheUint4),
    U6(FheUint6),
    U8(FheUint8),
    U10(FheUint10),
    U12(FheUint12),
    U14(FheUint14),
    U16(FheUint16),
    U32(FheUint32),
}

impl std::fmt::Debug for EncryptedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EncryptedValue::Bool(_) => "EncryptedValue::Bool(..)",
            EncryptedValue::U2(_) => "EncryptedValue::U2(..)",
            EncryptedValue::U4(_) => "EncryptedValue::U4(..)",
            EncryptedValue::U6(_) => "EncryptedValue::U6(..)",
            EncryptedValue::U8(_) => "EncryptedValue::U8(..)",
            EncryptedValue::U10(_) => "EncryptedValue::U10(..)",
            EncryptedValue::U12(_) => "EncryptedValue::U12(..)",
            EncryptedValue::U14(_) => "EncryptedValue::U14(..)",
            EncryptedValue::U16(_) => "EncryptedValue::U16(..)",
            EncryptedValue::U32(_) => "EncryptedValue::U32(..)",
        })
    }
}

/// True when every radix block has an all-zero LWE mask: such a ciphertext carries its value
/// in clear. A compact-list encryption made with zero randomness expands (keyswitch + PBS) to
/// exactly this, so this check after expansion refuses client-sent trivial ciphertexts.
fn blocks_trivial<'a>(blocks: impl IntoIterator<Item = &'a tfhe::shortint::Ciphertext>) -> bool {
    blocks
        .into_iter()
        .any(|b| b.ct.get_mask().as_ref().iter().all(|&x| x == 0))
}

macro_rules! uint_blocks_trivial {
    ($value:expr) => {
        blocks_trivial($value.clone().into_raw_parts().0.blocks())
    };
}

impl EncryptedValue {
    /// True when any block of this value is a trivial (noiseless) ciphertext, i.e. carries its
    /// value in clear. Cloning one value is cheap (a few blocks).
    pub fn is_trivial(&self) -> bool {
        match self {
            EncryptedValue::Bool(v) | EncryptedValue::U2(v) => uint_blocks_trivial!(v),
            EncryptedValue::U4(v) => uint_blocks_trivial!(v),
            EncryptedValue::U6(v) => uint_blocks_trivial!(v),
            EncryptedValue::U8(v) => uint_blocks_trivial!(v),
            EncryptedValue::U10(v) => uint_blocks_trivial!(v),
            EncryptedValue::U12(v) => uint_blocks_trivial!(v),
            EncryptedValue::U14(v) => uint_blocks_trivial!(v),
            EncryptedValue::U16(v) => uint_blocks_trivial!(v),
            EncryptedValue::U32(v) => uint_blocks_trivial!(v),
        }
    }
}

/// Encrypts clear values (in schema order) directly with a client key, as typed FHE values,
/// without a proof. For the key holder's own computations, tests and benchmarks: records
/// that reach the server are always [`encrypt_record`]'s proven lists.
pub fn encrypt_values(
    client_key: &tfhe::ClientKey,
    schema: &RecordSchema,
    values: &[Value],
) -> Result<Vec<EncryptedValue>> {
    use tfhe::prelude::FheEncrypt;
    if values.len() != schema.fields.len() {
        return Err(Error::ShapeMismatch(format!(
            "{} values for schema {}@{} with {} fields",
            values.len(),
            schema.id,
            schema.version,
            schema.fields.len()
        )));
    }
    schema
        .fields
        .iter()
        .zip(values)
        .map(|(field, value)| {
            let v = match *value {
                Value::Bool(b) if field.ty == FieldType::Bool => {
                    return Ok(EncryptedValue::Bool(FheUint2::encrypt(
                        u8::from(b),
                        client_key,
                    )));
                }
                Value::Uint(v) if field.ty != FieldType::Bool && v <= field.ty.max_value() => v,
                _ => {
                    return Err(Error::InvalidField {
                        field: field.name.clone(),
                        reason: format!("{value:?} is not a {:?} value", field.ty),
                    });
                }
            };
            Ok(match field.ty {
                FieldType::U2 => EncryptedValue::U2(FheUint2::encrypt(v as u8, client_key)),
                FieldType::U4 => EncryptedValue::U4(FheUint4::encrypt(v as u8, client_key)),
                FieldType::U6 => EncryptedValue::U6(FheUint6::encrypt(v as u8, client_key)),
                FieldType::U8 => EncryptedValue::U8(FheUint8::encrypt(v as u8, client_key)),
                FieldType::U10 => EncryptedValue::U10(FheUint10::encrypt(v as u16, client_key)),
                FieldType::U12 => EncryptedValue::U12(FheUint12::encrypt(v as u16, client_key)),
                FieldType::U14 => EncryptedValue::U14(FheUint14::encrypt(v as u16, client_key)),
                FieldType::U16 => EncryptedValue::U16(FheUint16::encrypt(v as u16, client_key)),
                // Booleans returned above.
                FieldType::U32 | FieldType::Bool => {
                    EncryptedValue::U32(FheUint32::encrypt(v, client_key))
                }
            })
        })
        .collect()
}

/// The record binding a proof verifies under.
enum Binding {
    /// v3: the metadata and the sealed transcript's digest.
    Current,
    /// v2: the metadata alone (records proven before transcripts were bound).
    Legacy,
}

/// Server-side verification of records against one key set's public material.
#[derive(Clone)]
pub struct Verifier {
    bundle: AppBundle,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("key_id", &self.bundle.key_id())
            .finish()
    }
}

impl Verifier {
    /// A verifier for records encrypted under `bundle`.
    pub fn new(bundle: AppBundle) -> Self {
        Self { bundle }
    }

    /// The key set this verifier checks against.
    pub fn key_id(&self) -> &str {
        self.bundle.key_id()
    }

    /// The manifest of that key set (its components' fingerprints).
    pub fn manifest(&self) -> &KeyManifest {
        self.bundle.manifest()
    }

    /// Decodes and checks a lane list without expanding it: size limit, framing, proof
    /// conformance, metadata against schema and key set, slot count, a real (non-zero) mask,
    /// and the proof bound to `meta` and the sealed transcript's digest (binding v3, the only
    /// one ingest accepts). A proof that verifies only under binding v2 is
    /// [`Error::LegacyProof`], so an app on an older SDK is told what to do.
    pub fn verify_record(
        &self,
        proven_list: &[u8],
        schema: &RecordSchema,
        meta: &RecordMetadata,
        transcript: Option<&TranscriptDigest>,
    ) -> Result<LaneList> {
        let list = self.checked_list(proven_list, schema, meta)?;
        match self.bound_to(&list, meta, transcript)? {
            Binding::Current => Ok(list),
            Binding::Legacy => Err(Error::LegacyProof),
        }
    }

    /// [`Self::verify_record`] for a stored record, which may predate transcript binding: a
    /// proof that does not verify under binding v3 is tried under
    /// [`RecordMetadata::legacy_binding`] (a proof verifies under the one binding it was made
    /// for, so a v3 record whose transcript was changed fails both).
    pub fn verify_stored_record(
        &self,
        proven_list: &[u8],
        schema: &RecordSchema,
        meta: &RecordMetadata,
        transcript: Option<&TranscriptDigest>,
    ) -> Result<LaneList> {
        let list = self.checked_list(proven_list, schema, meta)?;
        self.bound_to(&list, meta, transcript)?;
        Ok(list)
    }

    /// Which binding the list's proof verifies under: v3, else v2 (tried only when v3 fails).
    fn bound_to(
        &self,
        list: &LaneList,
        meta: &RecordMetadata,
        transcript: Option<&TranscriptDigest>,
    ) -> Result<Binding> {
        let (crs, key) = (self.bundle.crs(), self.bundle.lane_key());
        match list.verify(crs, key, &meta.binding(transcript)) {
            Ok(()) => Ok(Binding::Current),
            Err(Error::ProofInvalid) if list.verify(crs, key, &meta.legacy_binding()).is_ok() => {
                Ok(Binding::Legacy)
            }
            Err(e) => Err(e),
        }
    }

    fn checked_list(
        &self,
        proven_list: &[u8],
        schema: &RecordSchema,
        meta: &RecordMetadata,
    ) -> Result<LaneList> {
        meta.check_against(schema, self.key_id())?;
        let list = LaneList::decode(proven_list)?;
        check_shape(&list, schema)?;
        if list.has_zero_mask() {
            return Err(Error::TrivialCiphertext { index: 0 });
        }
        Ok(list)
    }

    /// [`Self::verify_record`] over many records at once, in parallel on the rayon pool (proof
    /// verification is independent per record). Results are in input order.
    pub fn verify_records(
        &self,
        records: &[RecordEnvelope],
        schema: &RecordSchema,
    ) -> Vec<Result<()>> {
        use rayon::prelude::*;
        records
            .par_iter()
            .map(|r| {
                self.verify_record(
                    &r.proven_list,
                    schema,
                    &r.metadata,
                    r.transcript_digest().as_ref(),
                )
                .map(drop)
            })
            .collect()
    }

    /// Everything [`Self::verify_stored_record`] checks, then derives the record's typed FHE
    /// values from its lane list (one casting keyswitch + bootstrap per radix block, see
    /// [`crate::lane::derive`]) and refuses trivial ciphertexts.
    pub fn verify_and_expand(
        &self,
        key: &ComputeKey,
        proven_list: &[u8],
        schema: &RecordSchema,
        meta: &RecordMetadata,
        transcript: Option<&TranscriptDigest>,
    ) -> Result<Vec<EncryptedValue>> {
        let list = self.verify_stored_record(proven_list, schema, meta, transcript)?;
        let map = schema.slot_map()?;
        let radixes = key.derive(&list, &map.field_widths())?;
        let mut values = Vec::with_capacity(schema.fields.len());
        for (i, (field, radix)) in schema.fields.iter().zip(radixes).enumerate() {
            let value = typed(field.ty, radix);
            if value.is_trivial() {
                return Err(Error::TrivialCiphertext { index: i });
            }
            values.push(value);
        }
        Ok(values)
    }
}

/// Wraps derived radix blocks as the field type's high-level value.
fn typed(ty: FieldType, radix: RadixCiphertext) -> EncryptedValue {
    macro_rules! wrap {
        ($variant:ident, $t:ident, $id:ident) => {
            EncryptedValue::$variant($t::from_raw_parts(
                radix,
                $id,
                Tag::default(),
                ReRandomizationMetadata::default(),
            ))
        };
    }
    match ty {
        FieldType::Bool => wrap!(Bool, FheUint2, FheUint2Id),
        FieldType::U2 => wrap!(U2, FheUint2, FheUint2Id),
        FieldType::U4 => wrap!(U4, FheUint4, FheUint4Id),
        FieldType::U6 => wrap!(U6, FheUint6, FheUint6Id),
        FieldType::U8 => wrap!(U8, FheUint8, FheUint8Id),
        FieldType::U10 => wrap!(U10, FheUint10, FheUint10Id),
        FieldType::U12 => wrap!(U12, FheUint12, FheUint12Id),
        FieldType::U14 => wrap!(U14, FheUint14, FheUint14Id),
        FieldType::U16 => wrap!(U16, FheUint16, FheUint16Id),
        FieldType::U32 => wrap!(U32, FheUint32, FheUint32Id),
    }
}
