use blindsight_crypto::Value;
use blindsight_crypto::compute::Tier;
use blindsight_crypto::schemas::training_v1;

use super::*;

fn summary(id: &str, trainee: &str, at: i64, seq: i64) -> RecordSummary {
    RecordSummary {
        seq,
        record_id: id.into(),
        key_id: "k1".into(),
        schema_id: "training".into(),
        schema_version: 1,
        cohort: Some(trainee.into()),
        lexicon_version: Some("train-lex-1".into()),
        recorded_at: Some(at),
        received_at: 0,
        proven_list_digest: String::new(),
        has_transcript: true,
        sealed_transcript_digest: None,
        rollup_day: None,
    }
}

/// A training record's values in schema order, from a few named counts.
fn session(named: &[(&str, u32)]) -> Vec<Value> {
    training_v1()
        .fields
        .iter()
        .map(|f| {
            let v = named.iter().find(|(n, _)| *n == f.name);
            Value::Uint(v.map_or(0, |(_, v)| *v))
        })
        .collect()
}

fn stats(records: &[Vec<Value>]) -> ViewStats {
    ViewStats::new(
        supervisor_query()
            .evaluate_clear(&training_v1(), records)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn the_query_compiles_and_the_lane_answers_all_of_it() {
    let query = supervisor_query();
    assert_eq!(query.aggregates.len(), 24);
    let schema = training_v1();
    let compiled = query.compile(&schema, 10).unwrap();
    let plan = compiled.lane_plan(&schema.slot_map().unwrap());
    // Every aggregate but the clear count runs on the lane: no PBS per record.
    assert!(!plan.by_lane[0]);
    assert!(plan.by_lane[1..].iter().all(|b| *b), "{:?}", plan.by_lane);
}

#[test]
fn statistics_read_the_values() {
    let records = vec![
        session(&[
            ("mi_open_questions", 3),
            ("mi_closed_questions", 1),
            ("mi_simple_reflections", 2),
            ("mi_complex_reflections", 2),
            ("empathy_statements", 1),
            ("bias_dismissive", 1),
            ("self_confidence", 4),
            ("talk_share_pct", 60),
        ]),
        session(&[
            ("mi_open_questions", 1),
            ("mi_closed_questions", 3),
            ("mi_simple_reflections", 2),
            ("bias_stigma_label", 2),
            ("bias_slur", 1),
            ("self_confidence", 6),
            ("supervisor_rating", 8),
            ("talk_share_pct", 40),
        ]),
    ];
    let s = stats(&records);
    assert_eq!(s.sessions(), 2);
    // 6 reflections over 8 questions.
    assert_eq!(s.reflection_to_question(), Some(0.75));
    assert_eq!(s.complex_reflection_pct(), Some(100.0 * 2.0 / 6.0));
    assert_eq!(s.open_question_pct(), Some(50.0));
    assert_eq!(s.technique_means()[0], ("mi_open_questions", Some(2.0)));
    assert_eq!(s.technique_means()[8], ("empathy_statements", Some(0.5)));
    assert_eq!(s.bias_per_session(), Some(2.0));
    assert_eq!(
        s.bias_categories(),
        vec![
            ("bias_stigma_label", 2),
            ("bias_dismissive", 1),
            ("bias_blaming", 0),
            ("bias_stereotype", 0),
            ("bias_pathologizing", 0),
            ("bias_slur", 1),
        ]
    );
    // One session with 1 incident, one with 3.
    assert_eq!(s.sessions_by_incidents(), vec![0, 1, 1, 0]);
    assert_eq!(s.sessions_with_slur(), 1);
    assert_eq!(s.mean_confidence(), Some(5.0));
    assert_eq!(s.mean_rating(), (Some(8.0), 1));
    assert_eq!(s.mean_talk_share(), Some(50.0));
    // Without questions there is no ratio, rather than a division by zero.
    let s = stats(&[session(&[("mi_simple_reflections", 2)])]);
    assert_eq!(s.reflection_to_question(), None);
    assert_eq!(s.mean_rating(), (None, 0));
    assert!(ViewStats::new(Vec::new()).is_err());
}

#[test]
fn plans_group_trainees_and_order_windows_by_time() {
    let listing = vec![
        summary("b2", "trainee-b", 200, 1),
        summary("a3", "trainee-a", 300, 2),
        summary("a1", "trainee-a", 100, 3),
        summary("a2", "trainee-a", 200, 4),
        summary("a4", "trainee-a", 400, 5),
        summary("b1", "trainee-b", 100, 6),
        // Another key set's and another schema's records are not read.
        RecordSummary {
            key_id: "k2".into(),
            ..summary("x", "trainee-a", 1, 7)
        },
        RecordSummary {
            schema_id: "session".into(),
            ..summary("y", "trainee-a", 1, 8)
        },
    ];
    let p = plan(&listing, "k1", &[], 3).unwrap();
    assert_eq!(p.views.len(), 1 + 2 * 3);
    assert_eq!(p.views[0].trainee, None);
    // By time, then ingest order (b2 and a2 share a time).
    assert_eq!(p.views[0].records, ["a1", "b1", "b2", "a2", "a3", "a4"]);
    assert_eq!(p.views[0].select.schema_id, "training");
    let a: Vec<_> = p.views[1..4]
        .iter()
        .map(|v| (v.window, v.records.clone()))
        .collect();
    assert_eq!(
        a,
        vec![
            (
                Window::All,
                vec!["a1".into(), "a2".into(), "a3".into(), "a4".into()]
            ),
            (
                Window::First(3),
                vec!["a1".into(), "a2".into(), "a3".into()]
            ),
            (Window::Last(3), vec!["a2".into(), "a3".into(), "a4".into()]),
        ]
    );
    // A trainee with fewer sessions than the window: windows of all of them.
    assert_eq!(p.views[5].window, Window::First(2));
    assert_eq!(p.views[6].records, ["b1", "b2"]);
    assert_eq!(p.views[4].select.cohort.as_deref(), Some("trainee-b"));
    assert_eq!(
        p.sessions["trainee-a"],
        vec![
            ("a1".to_owned(), 100),
            ("a2".into(), 200),
            ("a3".into(), 300),
            ("a4".into(), 400)
        ]
    );

    let only_b = plan(&listing, "k1", &["trainee-b".into()], 1).unwrap();
    assert_eq!(only_b.views.len(), 4);
    assert_eq!(only_b.views[0].records, ["b1", "b2"]);

    let err = plan(&listing, "k1", &["trainee-z".into()], 3).unwrap_err();
    assert!(err.to_string().contains("trainee-z"), "{err}");
    let err = plan(&listing, "k9", &[], 3).unwrap_err();
    assert!(err.to_string().contains("record --training"), "{err}");
    assert!(plan(&listing, "k1", &[], 0).is_err());
}

#[test]
fn sparklines_scale_to_the_largest_value() {
    assert_eq!(sparkline(&[0, 7, 14]), "▁▅█");
    assert_eq!(sparkline(&[0, 0]), "▁▁");
    assert_eq!(sparkline(&[]), "");
}

#[test]
fn reports_render_as_table_csv_json_and_chart() {
    let skilled = session(&[
        ("mi_open_questions", 4),
        ("mi_simple_reflections", 3),
        ("mi_complex_reflections", 3),
        ("empathy_statements", 2),
    ]);
    let novice = session(&[
        ("mi_closed_questions", 6),
        ("mi_simple_reflections", 1),
        ("bias_blaming", 2),
    ]);
    let listing = vec![
        summary("a1", "trainee-a", 100, 1),
        summary("a2", "trainee-a", 200, 2),
    ];
    let p = plan(&listing, "k1", &[], 1).unwrap();
    let values = |ids: &[String]| -> Vec<Vec<Value>> {
        ids.iter()
            .map(|id| {
                if id == "a1" {
                    novice.clone()
                } else {
                    skilled.clone()
                }
            })
            .collect()
    };
    let report = SupervisorReport {
        views: p
            .views
            .iter()
            .map(|v| View {
                plan: v.clone(),
                job_id: "job-1".into(),
                stats: stats(&values(&v.records)),
            })
            .collect(),
        scores: [(
            "trainee-a".to_owned(),
            vec![
                SessionScore {
                    record_id: "a1".into(),
                    at: 100,
                    score: 6,
                    tier: Tier::Moderate,
                },
                SessionScore {
                    record_id: "a2".into(),
                    at: 200,
                    score: 0,
                    tier: Tier::None,
                },
            ],
        )]
        .into(),
        bias_job_id: "job-0".into(),
    };
    let table = report.table();
    assert!(table.contains("trainee-a (first 1)"), "{table}");
    assert!(table.contains("refl/question"), "{table}");
    let csv = report.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4);
    assert!(lines[0].starts_with("trainee,window,job_id,sessions,reflection_to_question"));
    assert!(
        lines[2].starts_with("trainee-a,all,job-1,2,"),
        "{}",
        lines[2]
    );
    let cols = lines[0].split(',').count();
    assert!(lines[1..].iter().all(|l| l.split(',').count() == cols));
    let json = report.to_json();
    assert_eq!(json["views"][2]["window"]["kind"], "first");
    assert_eq!(json["views"][2]["bias_categories"]["bias_blaming"], 2);
    assert_eq!(json["views"][3]["reflection_to_question"], 1.5);
    assert_eq!(json["session_scores"]["trainee-a"][0]["tier"], "moderate");
    let chart = report.chart("trainee-a").unwrap();
    assert!(chart.contains("█▁"), "{chart}");
    assert!(chart.contains("scores 6 0"), "{chart}");
    assert!(chart.contains("first 1 vs last 1"), "{chart}");
    // Reflections per question: 1/6 first, 6/4 last.
    assert!(chart.contains("0.17") && chart.contains("1.50"), "{chart}");
    assert!(report.chart("trainee-z").is_none());
}
