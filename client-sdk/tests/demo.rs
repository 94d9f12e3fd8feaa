//! The demo (the README's main job) runs end to end and decrypts the expected results.

#[test]
fn demo_runs_end_to_end() {
    let dir = std::env::temp_dir().join(format!("blindsight-demo-test-{}", std::process::id()));
    let mut out = Vec::new();
    let report = blindsight_client::demo::run(&mut out, &dir).expect("demo runs");
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("[6/6]"), "{text}");
    assert_eq!(
        report,
        vec![
            ("rec-0001".to_owned(), false, true),
            ("rec-0002".to_owned(), true, false),
            ("rec-0003".to_owned(), false, true),
        ]
    );
    // The keystore was written with owner-only permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("demo.keystore"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
