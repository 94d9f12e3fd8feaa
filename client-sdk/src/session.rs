//! Sessions → records: the app-side turn of one therapy session (questionnaires, moods,
//! transcript) into an encrypted, proven, sealed [`RecordEnvelope`] under the built-in
//! `session` v1 schema. The JSON format is documented with an example in
//! `docs/session-example.json`.

use blindsight_crypto::schemas::{CSSRS_ITEMS, GAD7_ITEMS, PHQ9_ITEMS, session_v1};
use blindsight_crypto::{
    AppBundle, RecordEnvelope, RecordMetadata, RecordSchema, RecordValues, Value,
};
use serde::{Deserialize, Serialize};

use crate::lexicon::{self, LEXICON_VERSION};
use crate::record::{NewRecord, Recordable, build_envelope};
use crate::{Error, Result};

/// C-SSRS screener answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CssrsScreener {
    /// 1. Wished to be dead or not wake up.
    pub wish_dead: bool,
    /// 2. Non-specific active suicidal thoughts.
    pub thoughts: bool,
    /// 3. Thoughts with a method.
    pub method: bool,
    /// 4. Some intent to act.
    pub intent: bool,
    /// 5. A plan.
    pub plan: bool,
    /// 6. Suicidal behaviour.
    pub behavior: bool,
}

/// One session as an app records it (the JSON format of `blindsight record`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The record id, chosen by the app so a retried upload cannot create a duplicate.
    pub record_id: String,
    /// The cohort label analytics select on.
    #[serde(default)]
    pub cohort: Option<String>,
    /// When the session happened, seconds since the Unix epoch.
    #[serde(default)]
    pub recorded_at: Option<u64>,
    /// Mood before the session, 0–10.
    pub mood_before: u32,
    /// Mood after the session, 0–10.
    pub mood_after: u32,
    /// Duration in minutes, 0–240.
    pub duration_min: u32,
    /// The nine PHQ-9 answers, 0–3 each, in questionnaire order.
    pub phq9: Vec<u32>,
    /// The seven GAD-7 answers, 0–3 each, in questionnaire order.
    pub gad7: Vec<u32>,
    /// The C-SSRS screener.
    pub cssrs: CssrsScreener,
    /// The transcript: lexicon features are extracted from it on the device, then it is sealed
    /// to the key holder. Never sent in clear.
    #[serde(default)]
    pub transcript: Option<String>,
}

fn answers(name: &str, given: &[u32], fields: &[&str]) -> Result<Vec<(String, Value)>> {
    if given.len() != fields.len() {
        return Err(Error::Crypto(blindsight_crypto::Error::InvalidField {
            field: name.to_owned(),
            reason: format!("expected {} answers, found {}", fields.len(), given.len()),
        }));
    }
    Ok(fields
        .iter()
        .zip(given)
        .map(|(f, v)| ((*f).to_owned(), Value::Uint(*v)))
        .collect())
}

impl Session {
    /// The record values under `session` v1, lexicon features included. Ranges are checked
    /// when the record is encrypted, with errors naming the field (e.g. `phq9_9`).
    pub fn values(&self) -> Result<RecordValues> {
        let mut values = RecordValues::new();
        values.insert("mood_before".into(), Value::Uint(self.mood_before));
        values.insert("mood_after".into(), Value::Uint(self.mood_after));
        values.insert("duration_min".into(), Value::Uint(self.duration_min));
        values.extend(answers("phq9", &self.phq9, &PHQ9_ITEMS)?);
        values.extend(answers("gad7", &self.gad7, &GAD7_ITEMS)?);
        let c = &self.cssrs;
        let cssrs = [
            c.wish_dead,
            c.thoughts,
            c.method,
            c.intent,
            c.plan,
            c.behavior,
        ];
        values.extend(
            CSSRS_ITEMS
                .iter()
                .zip(cssrs)
                .map(|(f, v)| ((*f).to_owned(), Value::Bool(v))),
        );
        let features = lexicon::extract(self.transcript.as_deref().unwrap_or(""));
        values.extend(
            features
                .clipped()
                .into_iter()
                .map(|(f, v)| (f.to_owned(), Value::Uint(v))),
        );
        Ok(values)
    }

    /// The session as a record of the built-in `session` v1 schema.
    fn as_record<'a>(&self, schema: &'a RecordSchema) -> Result<NewRecord<'a>> {
        Ok(NewRecord {
            schema,
            record_id: self.record_id.clone(),
            cohort: self.cohort.clone(),
            recorded_at: self.recorded_at,
            lexicon_version: Some(LEXICON_VERSION.to_owned()),
            values: self.values()?,
            transcript: self.transcript.clone(),
        })
    }

    /// The record's metadata for `tenant` under the app bundle's key set.
    pub fn metadata(&self, tenant: &str, key_id: &str) -> RecordMetadata {
        let schema = session_v1();
        NewRecord {
            schema: &schema,
            record_id: self.record_id.clone(),
            cohort: self.cohort.clone(),
            recorded_at: self.recorded_at,
            lexicon_version: Some(LEXICON_VERSION.to_owned()),
            values: RecordValues::new(),
            transcript: None,
        }
        .metadata(tenant, key_id)
    }

    /// Validates, encrypts and proves the session and seals its transcript: the envelope an
    /// app uploads. Nothing is encrypted unless every value is present and in range.
    pub fn to_record(&self, app: &AppBundle, tenant: &str) -> Result<RecordEnvelope> {
        let schema = session_v1();
        build_envelope(app, tenant, &self.as_record(&schema)?)
    }
}

impl Recordable for Session {
    fn record_id(&self) -> &str {
        &self.record_id
    }

    fn to_record(&self, app: &AppBundle, tenant: &str) -> Result<RecordEnvelope> {
        Session::to_record(self, app, tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../docs/session-example.json");

    #[test]
    fn example_parses_and_fills_every_field() {
        let s: Session = serde_json::from_str(EXAMPLE).unwrap();
        let values = s.values().unwrap();
        session_v1().order_values(&values).unwrap();
        assert_eq!(values["lex_hopelessness"], Value::Uint(1));
        assert_eq!(values["phq9_9"], Value::Uint(1));
    }

    #[test]
    fn wrong_answer_counts_and_ranges_name_the_field() {
        let mut s: Session = serde_json::from_str(EXAMPLE).unwrap();
        s.phq9.pop();
        let err = s.values().unwrap_err().to_string();
        assert!(
            err.contains("phq9") && err.contains("expected 9 answers"),
            "{err}"
        );

        let mut s: Session = serde_json::from_str(EXAMPLE).unwrap();
        s.gad7[2] = 4;
        let err = session_v1().order_values(&s.values().unwrap()).unwrap_err();
        assert!(err.to_string().contains("gad7_3"), "{err}");
    }

    #[test]
    fn unknown_json_fields_are_refused() {
        let mut json: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        json["diagnosis"] = serde_json::json!("x");
        assert!(serde_json::from_value::<Session>(json).is_err());
    }
}
