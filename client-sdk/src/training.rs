//! Training sessions → records: one practice conversation of a therapist trainee with a
//! simulated client, turned on the device into an encrypted, proven, sealed
//! [`RecordEnvelope`] under the built-in `training` v1 schema. The JSON format is documented
//! with an example in `docs/training-example.json`.
//!
//! Only the trainee's own messages are read for the features ([`crate::training_lexicon`]);
//! the simulated client's messages count towards the talk-time share and are sealed with the
//! rest of the conversation to the key holder (the supervising clinic), never sent in clear.
//! The record's cohort label is the trainee's pseudonym, chosen by the platform: supervisor
//! views select on it.

use blindsight_crypto::schemas::{TRAINING_SCENARIOS, training_v1};
use blindsight_crypto::{AppBundle, RecordEnvelope, RecordSchema, RecordValues, Value};
use serde::{Deserialize, Serialize};

use crate::record::{NewRecord, Recordable, build_envelope};
use crate::training_lexicon::{self, TRAINING_LEXICON_VERSION, TrainingFeatures};
use crate::{Error, Result};

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The therapist in training: the only role whose words are scored.
    Trainee,
    /// The simulated client (an actor, a standardized patient or a chatbot).
    Client,
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub text: String,
}

/// One practice session as a training platform records it (the JSON format of
/// `blindsight record --training`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSession {
    /// The record id, chosen by the platform so a retried upload cannot create a duplicate.
    pub record_id: String,
    /// The trainee's pseudonym (`[A-Za-z0-9._-]`, the record's cohort label): per-trainee
    /// supervisor views select on it. Never a name.
    pub trainee: String,
    /// When the session happened, seconds since the Unix epoch (progress over time reads it).
    #[serde(default)]
    pub recorded_at: Option<u64>,
    /// The scenario category, one of [`TRAINING_SCENARIOS`] (e.g. `substance_use`).
    pub scenario: String,
    /// Duration in minutes, 0–240.
    pub duration_min: u32,
    /// The trainee's share of talk time in percent (0–100), when the platform timed it;
    /// otherwise it is the trainee's share of the words in `messages`.
    #[serde(default)]
    pub talk_share_pct: Option<u32>,
    /// The trainee's self-rated confidence after the session, 0–10.
    pub self_confidence: u32,
    /// The supervisor's rating, 1–10, when the session was rated.
    #[serde(default)]
    pub supervisor_rating: Option<u32>,
    /// The conversation, in order, each message with its role.
    pub messages: Vec<Message>,
}

fn invalid(field: &str, reason: String) -> Error {
    Error::Crypto(blindsight_crypto::Error::InvalidField {
        field: field.to_owned(),
        reason,
    })
}

fn words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

impl TrainingSession {
    /// The code of the session's scenario (its position in [`TRAINING_SCENARIOS`]).
    pub fn scenario_code(&self) -> Result<u32> {
        TRAINING_SCENARIOS
            .iter()
            .position(|s| *s == self.scenario)
            .map(|i| i as u32)
            .ok_or_else(|| {
                invalid(
                    "scenario",
                    format!(
                        "{:?} is not a scenario category; use one of {}",
                        self.scenario.chars().take(64).collect::<String>(),
                        TRAINING_SCENARIOS.join(", ")
                    ),
                )
            })
    }

    /// The trainee's own messages, in order.
    pub fn trainee_messages(&self) -> impl Iterator<Item = &str> {
        self.messages
            .iter()
            .filter(|m| m.role == Role::Trainee)
            .map(|m| m.text.as_str())
    }

    /// The features extracted on the device from the trainee's messages.
    pub fn features(&self) -> TrainingFeatures {
        training_lexicon::extract_trainee(self.trainee_messages())
    }

    /// The trainee's share of talk time in percent: as timed by the platform, or else the
    /// trainee's share of the words (0 for a conversation without words).
    pub fn talk_share(&self) -> u32 {
        if let Some(pct) = self.talk_share_pct {
            return pct;
        }
        let trainee: usize = self.trainee_messages().map(words).sum();
        let all: usize = self.messages.iter().map(|m| words(&m.text)).sum();
        (trainee * 100 + all / 2).checked_div(all).unwrap_or(0) as u32
    }

    /// The record values under `training` v1, features included. Ranges are checked when the
    /// record is encrypted, with errors naming the field.
    pub fn values(&self) -> Result<RecordValues> {
        if self.messages.iter().all(|m| m.role != Role::Trainee) {
            return Err(invalid(
                "messages",
                "the conversation holds no message with role \"trainee\"; only the trainee's messages are scored".into(),
            ));
        }
        if self.supervisor_rating == Some(0) {
            return Err(invalid(
                "supervisor_rating",
                "ratings are 1-10; leave it out when the session was not rated".into(),
            ));
        }
        let mut values = RecordValues::new();
        values.insert("scenario".into(), Value::Uint(self.scenario_code()?));
        values.insert("duration_min".into(), Value::Uint(self.duration_min));
        values.insert("talk_share_pct".into(), Value::Uint(self.talk_share()));
        values.insert("self_confidence".into(), Value::Uint(self.self_confidence));
        values.insert(
            "supervisor_rating".into(),
            Value::Uint(self.supervisor_rating.unwrap_or(0)),
        );
        values.extend(
            self.features()
                .clipped()
                .into_iter()
                .map(|(f, v)| (f.to_owned(), Value::Uint(v))),
        );
        Ok(values)
    }

    /// The conversation as it is sealed to the key holder: one line per message, prefixed
    /// with its role.
    pub fn transcript(&self) -> String {
        self.messages
            .iter()
            .map(|m| {
                let who = match m.role {
                    Role::Trainee => "Trainee",
                    Role::Client => "Client",
                };
                format!("{who}: {}\n", m.text)
            })
            .collect()
    }

    fn as_record<'a>(&self, schema: &'a RecordSchema, values: RecordValues) -> NewRecord<'a> {
        NewRecord {
            schema,
            record_id: self.record_id.clone(),
            cohort: Some(self.trainee.clone()),
            recorded_at: self.recorded_at,
            lexicon_version: Some(TRAINING_LEXICON_VERSION.to_owned()),
            values,
            transcript: Some(self.transcript()),
        }
    }

    /// Validates, extracts, encrypts and proves the session and seals its conversation: the
    /// envelope a platform uploads. Nothing is encrypted unless every value is in range.
    pub fn to_record(&self, app: &AppBundle, tenant: &str) -> Result<RecordEnvelope> {
        let schema = training_v1();
        build_envelope(app, tenant, &self.as_record(&schema, self.values()?))
    }
}

impl Recordable for TrainingSession {
    fn record_id(&self) -> &str {
        &self.record_id
    }

    fn to_record(&self, app: &AppBundle, tenant: &str) -> Result<RecordEnvelope> {
        TrainingSession::to_record(self, app, tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindsight_crypto::schemas::TRAINING_BIAS;

    const EXAMPLE: &str = include_str!("../../docs/training-example.json");

    fn example() -> TrainingSession {
        serde_json::from_str(EXAMPLE).unwrap()
    }

    #[test]
    fn example_parses_and_fills_every_field() {
        let s = example();
        let values = s.values().unwrap();
        training_v1().order_values(&values).unwrap();
        assert_eq!(values["scenario"], Value::Uint(2));
        assert_eq!(values["supervisor_rating"], Value::Uint(7));
        // The example is a skilled session: no bias counted.
        for f in TRAINING_BIAS {
            assert_eq!(values[f], Value::Uint(0), "{f}");
        }
        let schema = training_v1();
        let r = s.as_record(&schema, values);
        assert_eq!(r.cohort.as_deref(), Some("trainee-a17"));
        assert_eq!(r.lexicon_version.as_deref(), Some("train-lex-1"));
        let transcript = r.transcript.unwrap();
        assert!(transcript.starts_with("Trainee: "), "{transcript}");
        assert!(transcript.contains("\nClient: "), "{transcript}");
    }

    #[test]
    fn only_the_trainees_words_are_scored() {
        let mut s = example();
        let before = s.features();
        s.messages.push(Message {
            role: Role::Client,
            text: "You should just tell me what to do. Addicts like me never change.".into(),
        });
        assert_eq!(s.features(), before);
        s.messages.push(Message {
            role: Role::Trainee,
            text: "You should just stop drinking.".into(),
        });
        assert_ne!(s.features(), before);
    }

    #[test]
    fn talk_share_is_timed_or_counted_in_words() {
        let mut s = example();
        s.messages = vec![
            Message {
                role: Role::Trainee,
                text: "one two three".into(),
            },
            Message {
                role: Role::Client,
                text: "four five six seven eight nine".into(),
            },
        ];
        s.talk_share_pct = None;
        assert_eq!(s.talk_share(), 33);
        s.talk_share_pct = Some(40);
        assert_eq!(s.talk_share(), 40);
        s.talk_share_pct = Some(101);
        let err = training_v1()
            .order_values(&s.values().unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("talk_share_pct"), "{err}");
    }

    #[test]
    fn bad_sessions_name_the_field() {
        let mut s = example();
        s.scenario = "astrology".into();
        let err = s.values().unwrap_err().to_string();
        assert!(
            err.contains("scenario") && err.contains("substance_use"),
            "{err}"
        );

        let mut s = example();
        s.supervisor_rating = Some(0);
        let err = s.values().unwrap_err().to_string();
        assert!(err.contains("supervisor_rating"), "{err}");

        let mut s = example();
        s.messages.retain(|m| m.role == Role::Client);
        let err = s.values().unwrap_err().to_string();
        assert!(err.contains("messages") && err.contains("trainee"), "{err}");

        let mut s = example();
        s.self_confidence = 11;
        let err = training_v1()
            .order_values(&s.values().unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("self_confidence"), "{err}");

        let mut json: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        json["trainee_name"] = serde_json::json!("x");
        assert!(serde_json::from_value::<TrainingSession>(json).is_err());
        let mut json: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        json["messages"][0]["role"] = serde_json::json!("supervisor");
        assert!(serde_json::from_value::<TrainingSession>(json).is_err());
    }
}
