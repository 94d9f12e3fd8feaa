//! The end-to-end walk through Blindsight's cryptographic pipeline, as `blindsight demo`
//! runs it: key ceremony, keystore round trip, encrypt + prove records on the "app" side with
//! public material only, verify + expand and compute on ciphertext on the "server" side with
//! the evaluation key only, then decrypt results and open a transcript as the key holder.
//!
//! The HTTP server and the risk models arrive with later work; until then the demo plays
//! every role in one process, through the same library calls those roles use.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use blindsight_crypto::tfhe::prelude::*;
use blindsight_crypto::tfhe::{CompressedCiphertextListBuilder, FheBool, set_server_key};
use blindsight_crypto::{
    AppBundle, EncryptedValue, FieldSpec, FieldType, KeySet, PublicBundle, RecordEnvelope,
    RecordMetadata, RecordSchema, RecordValues, Value, Verifier, decode_result_list,
    encode_proven_list, encode_result_list, encrypt_record, open, seal,
};

use crate::{Error, Result, keystore};

/// The small schema the demo records use.
pub fn demo_schema() -> RecordSchema {
    RecordSchema {
        id: "demo-session".into(),
        version: 1,
        fields: vec![
            FieldSpec::uint("mood_before", 0, 10),
            FieldSpec::uint("mood_after", 0, 10),
            FieldSpec::uint("duration_min", 0, 240),
            FieldSpec::uint("phq9_item9", 0, 3),
            FieldSpec::boolean("cssrs_intent"),
        ],
    }
}

struct Session {
    id: &'static str,
    mood_before: u32,
    mood_after: u32,
    duration: u32,
    phq9_item9: u32,
    intent: bool,
    transcript: &'static str,
}

const SESSIONS: [Session; 3] = [
    Session {
        id: "rec-0001",
        mood_before: 3,
        mood_after: 6,
        duration: 50,
        phq9_item9: 0,
        intent: false,
        transcript: "I felt stuck this week but talking it through helped a lot.",
    },
    Session {
        id: "rec-0002",
        mood_before: 2,
        mood_after: 2,
        duration: 35,
        phq9_item9: 2,
        intent: false,
        transcript: "Nothing ever changes. I keep thinking everyone would be better off.",
    },
    Session {
        id: "rec-0003",
        mood_before: 5,
        mood_after: 7,
        duration: 45,
        phq9_item9: 0,
        intent: false,
        transcript: "Work is busy, sleep is better, I went running twice.",
    },
];

/// What the demo decrypted, per record: (record id, crisis flag, mood improved).
pub type DemoReport = Vec<(String, bool, bool)>;

/// Runs the demo, writing progress to `out` and the keystore into `dir`.
pub fn run(out: &mut dyn Write, dir: &Path) -> Result<DemoReport> {
    let mut step = |msg: &str| {
        let _ = writeln!(out, "{msg}");
    };
    let total = Instant::now();

    step("[1/6] key holder: generating a key set (128-bit TFHE parameters, ZK CRS, X25519)");
    let t = Instant::now();
    let keys = KeySet::generate_with_progress(|s| {
        let _ = s;
    })?;
    let (secret, public) = keys.into_parts();
    step(&format!(
        "      key set {} in {:.1}s; manifest fingerprint {}",
        secret.key_id(),
        t.elapsed().as_secs_f64(),
        public.manifest().fingerprint()?
    ));

    step("[2/6] key holder: saving the secrets to a passphrase-encrypted keystore (PBKDF2 600k)");
    let path = dir.join("demo.keystore");
    let passphrase = "demo passphrase - never use a literal passphrase in real use";
    keystore::save(
        &path,
        &secret,
        passphrase,
        blindsight_crypto::DEFAULT_ITERATIONS,
    )?;
    drop(secret);
    let secret = keystore::load(&path, passphrase)?;
    step(&format!("      wrote and re-opened {}", path.display()));

    step("[3/6] app: loading the public bundle pinned by its manifest fingerprint");
    let pin = public.manifest().fingerprint()?;
    let app = AppBundle::decode_pinned(&public.app_bundle().encode()?, &pin)?;
    let schema = demo_schema();

    step(&format!(
        "[4/6] app: encrypting and proving {} sessions ({} fields, {} bits each)",
        SESSIONS.len(),
        schema.fields.len(),
        schema.total_bits()
    ));
    let mut uploads = Vec::new();
    for s in &SESSIONS {
        let t = Instant::now();
        let meta = RecordMetadata {
            tenant: "demo-clinic".into(),
            key_id: app.key_id().to_owned(),
            schema_id: schema.id.clone(),
            schema_version: schema.version,
            record_id: s.id.into(),
            cohort: Some("demo".into()),
            lexicon_version: None,
            recorded_at: None,
        };
        let values: RecordValues = [
            ("mood_before", Value::Uint(s.mood_before)),
            ("mood_after", Value::Uint(s.mood_after)),
            ("duration_min", Value::Uint(s.duration)),
            ("phq9_item9", Value::Uint(s.phq9_item9)),
            ("cssrs_intent", Value::Bool(s.intent)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let list = encrypt_record(&app, &schema, &meta, &values)?;
        let sealed = seal(
            app.transcript_key(),
            &meta.transcript_aad(),
            s.transcript.as_bytes(),
        )?;
        let envelope = RecordEnvelope {
            metadata: meta,
            proven_list: encode_proven_list(&list)?,
            sealed_transcript: sealed,
        }
        .encode()?;
        step(&format!(
            "      {}: {} bytes (proof + ciphertext + sealed transcript) in {:.1}s",
            s.id,
            envelope.len(),
            t.elapsed().as_secs_f64()
        ));
        uploads.push(envelope);
    }

    step("[5/6] server: verifying proofs, expanding, computing on ciphertext");
    let results = server_side(&public, &schema, &uploads, &mut step)?;

    step("[6/6] key holder: decrypting results and opening a transcript");
    let list = decode_result_list(&results, &vec![FieldType::Bool; 2 * SESSIONS.len()])?;
    let mut report = Vec::new();
    for (i, s) in SESSIONS.iter().enumerate() {
        let flag: FheBool = list
            .get(2 * i)
            .map_err(|e| blindsight_crypto::Error::Fhe(e.to_string()))?
            .ok_or_else(|| blindsight_crypto::Error::ShapeMismatch("missing result".into()))?;
        let improved: FheBool = list
            .get(2 * i + 1)
            .map_err(|e| blindsight_crypto::Error::Fhe(e.to_string()))?
            .ok_or_else(|| blindsight_crypto::Error::ShapeMismatch("missing result".into()))?;
        let flag = flag.decrypt(secret.client_key());
        let improved = improved.decrypt(secret.client_key());
        step(&format!(
            "      {}: crisis flag {:<5}  mood improved {}",
            s.id, flag, improved
        ));
        report.push((s.id.to_owned(), flag, improved));
    }
    let flagged = RecordEnvelope::decode(&uploads[1])?;
    let transcript = open(
        secret.transcript_secret(),
        &flagged.metadata.transcript_aad(),
        &flagged.sealed_transcript,
    )?;
    step(&format!(
        "      opened the transcript of {} ({} bytes) for clinical follow-up",
        flagged.metadata.record_id,
        transcript.len()
    ));
    step(&format!("done in {:.1}s", total.elapsed().as_secs_f64()));
    Ok(report)
}

/// The server's part: public material and the evaluation key only.
fn server_side(
    public: &PublicBundle,
    schema: &RecordSchema,
    uploads: &[Vec<u8>],
    step: &mut dyn FnMut(&str),
) -> Result<Vec<u8>> {
    let (registered, server_key) = PublicBundle::decode_with_server_key(&public.encode()?)?;
    let server_key = server_key.decompress();
    set_server_key(server_key);
    let verifier = Verifier::new(registered.app_bundle().clone());
    let mut builder = CompressedCiphertextListBuilder::new();
    for upload in uploads {
        let t = Instant::now();
        let record = RecordEnvelope::decode(upload)?;
        let values = verifier.verify_and_expand(&record.proven_list, schema, &record.metadata)?;
        let [
            EncryptedValue::U4(before),
            EncryptedValue::U4(after),
            _,
            EncryptedValue::U2(item9),
            EncryptedValue::Bool(intent),
        ] = values.as_slice()
        else {
            return Err(Error::Crypto(blindsight_crypto::Error::ShapeMismatch(
                "unexpected field types".into(),
            )));
        };
        // PHQ-9 item 9 > 0 or a C-SSRS "yes" on intent raises the flag.
        let flag = item9.gt(0u8) | intent;
        let improved = after.gt(before);
        builder.push(flag).push(improved);
        step(&format!(
            "      {}: proof verified, expanded, flag and mood change computed in {:.1}s",
            record.metadata.record_id,
            t.elapsed().as_secs_f64()
        ));
    }
    let list = builder
        .build()
        .map_err(|e| blindsight_crypto::Error::Fhe(e.to_string()))?;
    Ok(encode_result_list(&list)?)
}
