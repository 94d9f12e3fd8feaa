//! The shared key sets, records and a test context per storage backend.

use std::sync::OnceLock;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use blindsight_crypto::schemas::{self, CSSRS_ITEMS, GAD7_ITEMS, PHQ9_ITEMS, TEXT_FEATURES};
use blindsight_crypto::{
    AppBundle, KeySet, RecordEnvelope, RecordMetadata, RecordValues, SecretKeys, Value,
    encrypt_record, seal, transcript_digest,
};
use blindsight_proto::TenantCreated;
use blindsight_server::http::{AppState, app};
use blindsight_server::{AdminToken, Db, ServerConfig};
use sqlx::Row;
use tower::ServiceExt;

pub(crate) const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";
pub(crate) const TENANT_A: &str = "tenant-a";
pub(crate) const TENANT_B: &str = "tenant-b";
pub(crate) const KEY_ID: &str = "ks-test";

pub(crate) struct Keys {
    pub(crate) secret: SecretKeys,
    pub(crate) bundle: Vec<u8>,
    pub(crate) app: AppBundle,
}

/// Two key sets under the same id (a second, different bundle for the conflict test and for
/// tenant B), generated once per test process, in parallel.
pub(crate) fn keys() -> &'static (Keys, Keys) {
    static KEYS: OnceLock<(Keys, Keys)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = || {
            let (secret, public) = KeySet::generate_with_id(KEY_ID, |_| {})
                .expect("key generation")
                .into_parts();
            Keys {
                bundle: public.encode().unwrap(),
                app: public.app_bundle().clone(),
                secret,
            }
        };
        std::thread::scope(|s| {
            let a = s.spawn(make);
            let b = make();
            (a.join().unwrap(), b)
        })
    })
}

/// Session values that differ by `i`.
pub(crate) fn session_values(i: u32) -> RecordValues {
    let mut v = RecordValues::new();
    v.insert("mood_before".into(), Value::Uint(i % 11));
    v.insert("mood_after".into(), Value::Uint((i + 3) % 11));
    v.insert("duration_min".into(), Value::Uint(30 + i % 60));
    for (j, n) in PHQ9_ITEMS.iter().chain(GAD7_ITEMS.iter()).enumerate() {
        v.insert((*n).into(), Value::Uint((i + j as u32) % 4));
    }
    for (j, n) in CSSRS_ITEMS.iter().enumerate() {
        v.insert((*n).into(), Value::Bool((i + j as u32).is_multiple_of(5)));
    }
    for (j, n) in TEXT_FEATURES.iter().enumerate() {
        v.insert((*n).into(), Value::Uint((i * 7 + j as u32) % 256));
    }
    v
}

pub(crate) fn metadata(tenant: &str, record_id: &str, cohort: &str) -> RecordMetadata {
    let schema = schemas::session_v1();
    RecordMetadata {
        tenant: tenant.into(),
        key_id: KEY_ID.into(),
        schema_id: schema.id,
        schema_version: schema.version,
        record_id: record_id.into(),
        cohort: Some(cohort.into()),
        lexicon_version: Some("lex-1".into()),
        recorded_at: Some(1_790_000_000),
    }
}

/// An encrypted, proven session record with a sealed transcript.
pub(crate) fn make_record(keys: &Keys, meta: &RecordMetadata, i: u32) -> RecordEnvelope {
    let sealed_transcript = seal(
        keys.app.transcript_key(),
        &meta.transcript_aad(),
        format!("transcript {i}").as_bytes(),
    )
    .unwrap();
    let list = encrypt_record(
        &keys.app,
        &schemas::session_v1(),
        meta,
        &session_values(i),
        transcript_digest(&sealed_transcript).as_ref(),
    )
    .expect("encrypt");
    RecordEnvelope {
        metadata: meta.clone(),
        proven_list: list.encode().unwrap(),
        sealed_transcript,
    }
}

/// Records of tenant A (`rec-0` …; cohorts alternate `north`/`south`), made once.
pub(crate) fn records_a() -> &'static [RecordEnvelope] {
    static RECORDS: OnceLock<Vec<RecordEnvelope>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        use rayon::prelude::*;
        // The key set first, outside rayon: a rayon thread blocked on its initialisation while
        // another test generates it (on rayon too) would deadlock the pool.
        let keys = &keys().0;
        (0..36u32)
            .into_par_iter()
            .map(|i| {
                let cohort = if i.is_multiple_of(2) {
                    "north"
                } else {
                    "south"
                };
                make_record(keys, &metadata(TENANT_A, &format!("rec-{i}"), cohort), i)
            })
            .collect()
    })
}

pub(crate) fn config() -> ServerConfig {
    let mut c = ServerConfig::new();
    c.admin_token = Some(AdminToken::new(ADMIN).unwrap());
    c
}

/// A server over one backend's fresh database.
pub(crate) struct Ctx {
    pub(crate) name: &'static str,
    pub(crate) state: AppState,
    pub(crate) app: Router,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The problem type slug (after the base URL).
    pub(crate) fn slug(&self) -> String {
        self.json()["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches(blindsight_server::PROBLEM_BASE)
            .to_owned()
    }

    /// Asserts a success status, showing the body when it is not.
    #[track_caller]
    pub(crate) fn expect_status(&self, status: StatusCode) {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
    }

    #[track_caller]
    pub(crate) fn expect(&self, status: u16, slug: &str) {
        assert_eq!(
            (self.status.as_u16(), self.slug().as_str()),
            (status, slug),
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// The whole observable content of the database: every table's rows, as text.
pub(crate) type Snapshot = Vec<(String, Vec<String>)>;

impl Ctx {
    pub(crate) async fn new(name: &'static str, config: ServerConfig) -> Option<Self> {
        let (db, dir, pg_admin) = match name {
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                let db = blindsight_server::open_and_migrate(None, dir.path())
                    .await
                    .unwrap();
                (db, Some(dir), None)
            }
            _ => {
                let url = std::env::var("BLINDSIGHT_TEST_POSTGRES_URL").ok()?;
                let admin = Db::connect(Some(&url), std::path::Path::new("."))
                    .await
                    .unwrap();
                let db_name = format!(
                    "bs_test_{}",
                    hex::encode(blindsight_crypto::random_bytes::<6>().unwrap())
                );
                sqlx::query(&format!("CREATE DATABASE {db_name}"))
                    .execute(admin.pool())
                    .await
                    .unwrap();
                admin.close().await;
                let (base, _) = url.rsplit_once('/').unwrap();
                let db_url = format!("{base}/{db_name}");
                let db =
                    blindsight_server::open_and_migrate(Some(&db_url), std::path::Path::new("."))
                        .await
                        .unwrap();
                (db, None, Some((url, db_name)))
            }
        };
        let state = AppState::new(db, config);
        state.set_ready(true);
        Some(Self {
            name,
            app: app(state.clone()),
            state,
            _dir: dir,
            pg_admin,
        })
    }

    /// A context over a server opened elsewhere (e.g. by `Server::open` on a data directory
    /// the test owns).
    pub(crate) fn over(name: &'static str, state: AppState) -> Self {
        state.set_ready(true);
        Self {
            name,
            app: app(state.clone()),
            state,
            _dir: None,
            pg_admin: None,
        }
    }

    /// The URL of this context's PostgreSQL test database (`None` on SQLite).
    pub(crate) fn database_url(&self) -> Option<String> {
        let (url, db_name) = self.pg_admin.as_ref()?;
        let (base, _) = url.rsplit_once('/')?;
        Some(format!("{base}/{db_name}"))
    }

    /// Drops the PostgreSQL test database.
    pub(crate) async fn finish(self) {
        self.state.db().close().await;
        if let Some((url, db_name)) = self.pg_admin {
            let admin = Db::connect(Some(&url), std::path::Path::new("."))
                .await
                .unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
                .execute(admin.pool())
                .await;
            admin.close().await;
        }
    }

    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let response = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 512 << 20).await.unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request(Method::GET, path, token, Vec::new()).await
    }

    pub(crate) async fn create_tenant(&self, id: &str) -> TenantCreated {
        let r = self
            .request(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN),
                serde_json::to_vec(
                    &serde_json::json!({"name": format!("Clinic {id}"), "tenant_id": id}),
                )
                .unwrap(),
            )
            .await;
        r.expect_status(StatusCode::CREATED);
        serde_json::from_slice(&r.body).unwrap()
    }

    /// Registers a key set for a tenant (asserting it was stored).
    pub(crate) async fn register(&self, keyholder: &str, keys: &Keys) {
        let r = self
            .request(
                Method::PUT,
                &format!("/v1/keysets/{KEY_ID}"),
                Some(keyholder),
                keys.bundle.clone(),
            )
            .await;
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }

    pub(crate) async fn upload(&self, ingest: &str, record: &RecordEnvelope) -> Resp {
        self.request(
            Method::POST,
            "/v1/records",
            Some(ingest),
            record.encode().unwrap(),
        )
        .await
    }

    /// Every table's rows, as text (blobs as their SHA-256), in a stable order. The audit log
    /// is in it, tenant chains only: the server-wide chain records failed authentications,
    /// the one kind of refused request that is documented to leave an entry.
    pub(crate) async fn snapshot(&self) -> Snapshot {
        let tables = [
            (
                "tenants",
                "SELECT tenant_id, name, min_cohort_size FROM tenants ORDER BY tenant_id",
            ),
            (
                "tokens",
                "SELECT lookup, tenant_id, role FROM tokens ORDER BY lookup",
            ),
            (
                "keysets",
                "SELECT tenant_id, key_id, bundle_digest, manifest_fingerprint FROM keysets ORDER BY tenant_id, key_id",
            ),
            (
                "schemas",
                "SELECT tenant_id, schema_id, schema_version, digest FROM schemas ORDER BY tenant_id, schema_id, schema_version",
            ),
            (
                "records",
                "SELECT seq, tenant_id, record_id, proven_list, sealed_transcript FROM records ORDER BY seq",
            ),
            (
                "audit_log",
                "SELECT chain, seq, kind, body, prev_hash, hash FROM audit_log WHERE chain <> '' ORDER BY chain, seq",
            ),
            (
                "audit_heads",
                "SELECT chain, seq, hash FROM audit_heads WHERE chain <> '' ORDER BY chain",
            ),
        ];
        let mut out = Vec::new();
        for (table, sql) in tables {
            let rows = sqlx::query(sql)
                .fetch_all(self.state.db().pool())
                .await
                .unwrap();
            let rows = rows
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            if let Ok(v) = r.try_get::<Option<String>, _>(i) {
                                format!("{v:?}")
                            } else if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
                                format!("{v:?}")
                            } else {
                                let v: Option<Vec<u8>> = r.try_get(i).unwrap();
                                format!("{:?}", v.map(|b| blindsight_crypto::sha256_hex(&b)))
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            out.push((table.to_owned(), rows));
        }
        out
    }
}

/// A context per backend: SQLite always, PostgreSQL when `BLINDSIGHT_TEST_POSTGRES_URL` is set.
pub(crate) async fn backends(config: impl Fn() -> ServerConfig) -> Vec<Ctx> {
    let mut out = vec![Ctx::new("sqlite", config()).await.unwrap()];
    if let Some(pg) = Ctx::new("postgres", config()).await {
        out.push(pg);
    } else {
        eprintln!("BLINDSIGHT_TEST_POSTGRES_URL is unset: PostgreSQL not exercised");
    }
    out
}
