//! The shared key set and helpers.

use std::sync::OnceLock;

use blindsight_crypto::tfhe::{ServerKey, set_server_key};
use blindsight_crypto::{
    ComputeKey, FieldSpec, KeySet, PublicBundle, RecordMetadata, RecordSchema, RecordValues,
    SecretKeys, Value,
};

pub(crate) struct Fixture {
    pub(crate) secret: SecretKeys,
    pub(crate) public: PublicBundle,
    pub(crate) server_key: ServerKey,
    pub(crate) compute: ComputeKey,
}

/// The key set every test shares, generated once per test process.
pub(crate) fn keys() -> &'static Fixture {
    static KEYS: OnceLock<Fixture> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (secret, public) = KeySet::generate().expect("key generation").into_parts();
        let compute =
            ComputeKey::from_compressed(&public.server_key().expect("server key decodes"))
                .expect("server key splits");
        Fixture {
            secret,
            public,
            server_key: compute.server_key().clone(),
            compute,
        }
    })
}

/// Installs the shared server key on the calling (test) thread.
pub(crate) fn use_server_key() -> &'static Fixture {
    let k = keys();
    set_server_key(k.server_key.clone());
    k
}

pub(crate) fn schema() -> RecordSchema {
    RecordSchema {
        id: "test-session".into(),
        version: 1,
        fields: vec![
            FieldSpec::uint("mood", 0, 10),
            FieldSpec::uint("item", 0, 3),
            FieldSpec::boolean("flag"),
            FieldSpec::uint("count", 0, 200),
            FieldSpec::uint("minutes", 0, 1000),
        ],
        lane: Default::default(),
    }
}

pub(crate) fn values() -> RecordValues {
    [
        ("mood", Value::Uint(7)),
        ("item", Value::Uint(2)),
        ("flag", Value::Bool(true)),
        ("count", Value::Uint(199)),
        ("minutes", Value::Uint(999)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub(crate) fn meta(record_id: &str) -> RecordMetadata {
    RecordMetadata {
        tenant: "tenant-a".into(),
        key_id: keys().public.key_id().to_owned(),
        schema_id: "test-session".into(),
        schema_version: 1,
        record_id: record_id.into(),
        cohort: Some("cohort-1".into()),
        lexicon_version: Some("lex-1".into()),
        recorded_at: Some(1_790_000_000),
    }
}

/// Every single-bit flip of `bytes` (or a deterministic sample of them for large inputs).
pub(crate) fn bit_flips(bytes: &[u8], max: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let total = bytes.len() * 8;
    let step = total.div_ceil(max).max(1);
    (0..total).step_by(step).map(move |bit| {
        let mut v = bytes.to_vec();
        v[bit / 8] ^= 1 << (bit % 8);
        v
    })
}

/// Every prefix length of `bytes` (or a sample of them for large inputs).
pub(crate) fn truncations(bytes: &[u8], max: usize) -> impl Iterator<Item = &[u8]> + '_ {
    let step = bytes.len().div_ceil(max).max(1);
    (0..bytes.len()).step_by(step).map(move |n| &bytes[..n])
}

/// A tiny deterministic PRNG (xorshift) for random-input tests.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        let b = self.bytes(8);
        (u64::from_le_bytes(b.try_into().unwrap()) % n as u64) as usize
    }
}
