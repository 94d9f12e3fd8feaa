//! Arguments shared by several commands: the server and its token, key sets, selections,
//! waiting, keystores and times.

use std::path::{Path, PathBuf};

use anyhow::Context;
use blindsight_client::api::{Client, Selection};
use blindsight_client::keystore;
use blindsight_crypto::SecretKeys;
use clap::Args;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Which records a job reads: routing metadata only.
#[derive(Args)]
pub(crate) struct SelectArgs {
    /// The key set the records are encrypted under.
    #[arg(long, env = "BLINDSIGHT_KEY_ID")]
    pub(crate) key_id: Option<String>,
    /// Only records with this cohort label.
    #[arg(long)]
    pub(crate) cohort: Option<String>,
    /// Only records recorded at or after this time: seconds since the epoch, YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM:SSZ (UTC).
    #[arg(long, value_parser = parse_time)]
    pub(crate) since: Option<i64>,
    /// Only records recorded before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    pub(crate) until: Option<i64>,
    /// Only this record (repeat for several); each must match the rest of the selection.
    #[arg(long = "record", value_name = "RECORD_ID")]
    pub(crate) records: Vec<String>,
    /// The record schema (default: the built-in model's schema, e.g. `training` for `bias`;
    /// otherwise `session`).
    #[arg(long)]
    pub(crate) schema: Option<String>,
    /// The record schema's version (default: as for --schema, else 1).
    #[arg(long)]
    pub(crate) schema_version: Option<u32>,
}

#[derive(Args)]
pub(crate) struct WaitArgs {
    /// Wait for the job to finish, showing its progress.
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: seconds to wait before giving up (the job keeps running).
    #[arg(long, default_value_t = 3600)]
    pub(crate) timeout: u64,
}

/// The optional JSON config file (`--config`, `BLINDSIGHT_CONFIG`): defaults for the flags
/// below. Tokens and passphrases never go in it.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub(crate) url: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) key_id: Option<String>,
    pub(crate) manifest_fingerprint: Option<String>,
    pub(crate) keystore: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "BLINDSIGHT_URL")]
    pub(crate) url: Option<String>,
    /// A bearer token (never written to the config file).
    #[arg(long, env = "BLINDSIGHT_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// The tenant id.
    #[arg(long, env = "BLINDSIGHT_TENANT")]
    pub(crate) tenant: Option<String>,
    /// A JSON config file with defaults (url, tenant, key_id, manifest_fingerprint, keystore).
    #[arg(long, env = "BLINDSIGHT_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct KeysetArgs {
    /// The key set to encrypt under.
    #[arg(long, env = "BLINDSIGHT_KEY_ID")]
    pub(crate) key_id: Option<String>,
    /// The manifest fingerprint to pin (printed by `keygen` and `register`): a bundle with any
    /// other fingerprint is refused.
    #[arg(long, env = "BLINDSIGHT_PIN")]
    pub(crate) pin: Option<String>,
}

impl ServerArgs {
    pub(crate) fn config(&self) -> anyhow::Result<ConfigFile> {
        let Some(path) = &self.config else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("couldn't read config file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }

    pub(crate) fn client(&self, config: &ConfigFile) -> anyhow::Result<Client> {
        let url = self.url.clone().or_else(|| config.url.clone()).context(
            "no server URL: pass --url, set BLINDSIGHT_URL, or put \"url\" in the config file",
        )?;
        let token = self
            .token
            .as_deref()
            .context("no token: pass --token or set BLINDSIGHT_TOKEN")?;
        Ok(Client::new(&url, token))
    }

    pub(crate) fn tenant(&self, config: &ConfigFile) -> anyhow::Result<String> {
        self.tenant.clone().or_else(|| config.tenant.clone()).context(
            "no tenant id: pass --tenant, set BLINDSIGHT_TENANT, or put \"tenant\" in the config file",
        )
    }
}

/// The passphrase that opens an existing keystore: BLINDSIGHT_PASSPHRASE or one prompt.
pub(crate) fn unlock_passphrase() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BLINDSIGHT_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password("keystore passphrase: ").context(
            "couldn't read a passphrase (set BLINDSIGHT_PASSPHRASE when there is no terminal)",
        )?,
    ))
}

/// The keystore path from --keystore, BLINDSIGHT_KEYSTORE or the config file.
pub(crate) fn keystore_path(
    flag: Option<&PathBuf>,
    config: &ConfigFile,
) -> anyhow::Result<PathBuf> {
    flag.cloned().or(config.keystore.clone()).context(
        "no keystore: pass --keystore, set BLINDSIGHT_KEYSTORE, or put \"keystore\" in the config file",
    )
}

pub(crate) fn open_keystore(path: &Path) -> anyhow::Result<SecretKeys> {
    let pass = unlock_passphrase()?;
    keystore::load(path, &pass)
        .with_context(|| format!("couldn't open keystore {}", path.display()))
}

/// A new keystore's passphrase: BLINDSIGHT_PASSPHRASE or a prompt, twice.
pub(crate) fn passphrase() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BLINDSIGHT_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    let first = Zeroizing::new(rpassword::prompt_password("keystore passphrase: ").context(
        "couldn't read a passphrase (set BLINDSIGHT_PASSPHRASE when there is no terminal)",
    )?);
    let second = Zeroizing::new(rpassword::prompt_password("repeat passphrase: ")?);
    anyhow::ensure!(*first == *second, "the passphrases differ");
    Ok(first)
}

/// `--since`/`--until`: seconds since the epoch, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let bad =
        || format!("{s:?} is not seconds since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (s, None),
    };
    let nums = |text: &str, sep: char, n: usize| -> Result<Vec<i64>, String> {
        let parts: Vec<i64> = text
            .split(sep)
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if parts.len() == n {
            Ok(parts)
        } else {
            Err(bad())
        }
    };
    let d = nums(date, '-', 3)?;
    let (y, m, day) = (d[0], d[1], d[2]);
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&day) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let t = nums(t, ':', 3)?;
        if !(0..24).contains(&t[0]) || !(0..60).contains(&t[1]) || !(0..60).contains(&t[2]) {
            return Err(bad());
        }
        secs += t[0] * 3600 + t[1] * 60 + t[2];
    }
    Ok(secs)
}

pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of seconds since the epoch (H. Hinnant's `civil_from_days`).
pub(crate) fn format_time(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl SelectArgs {
    pub(crate) fn key_id(&self, config: &ConfigFile) -> anyhow::Result<String> {
        self.key_id.clone().or(config.key_id.clone()).context(
            "no key set: pass --key-id, set BLINDSIGHT_KEY_ID, or put \"key_id\" in the config file",
        )
    }

    /// The selection; the schema defaults to `default` (id, version) when not given.
    pub(crate) fn selection_over(&self, default: (&str, u32)) -> anyhow::Result<Selection> {
        let mut selection = self.selection()?;
        if self.schema.is_none() {
            selection.schema_id = default.0.to_owned();
            selection.schema_version = self.schema_version.unwrap_or(default.1);
        }
        Ok(selection)
    }

    /// The selection; the schema defaults to `session` v1.
    pub(crate) fn selection(&self) -> anyhow::Result<Selection> {
        if let (Some(since), Some(until)) = (self.since, self.until) {
            anyhow::ensure!(
                since < until,
                "--since ({}) must be before --until ({})",
                format_time(since),
                format_time(until)
            );
        }
        Ok(Selection {
            schema_id: self
                .schema
                .clone()
                .unwrap_or_else(|| blindsight_crypto::schemas::SESSION_SCHEMA_ID.into()),
            schema_version: self
                .schema_version
                .unwrap_or(blindsight_crypto::schemas::SESSION_SCHEMA_VERSION),
            cohort: self.cohort.clone(),
            since: self.since,
            until: self.until,
            record_ids: (!self.records.is_empty()).then(|| self.records.clone()),
        })
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    file: &Path,
    what: &str,
) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("couldn't read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", file.display()))
}

pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    keystore::write_private_atomic(path, text.as_bytes(), true)
        .with_context(|| format!("couldn't write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format_in_utc() {
        assert_eq!(parse_time("1795300000"), Ok(1_795_300_000));
        assert_eq!(parse_time("2026-02-28T10:00:00Z"), Ok(1_772_272_800));
        assert_eq!(parse_time("2000-02-29"), Ok(951_782_400));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-01-01T10:00:00",
            "yesterday",
            "2026-1",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(format_time(1_795_300_000), "2026-11-21 22:26:40");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59");
    }
}
