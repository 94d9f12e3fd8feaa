//! Keystore files: atomic, owner-only, never overwritten, wrong passphrase refused.

use blindsight_client::{Error, keystore};

#[test]
fn atomic_private_write_refuses_to_overwrite() {
    let dir = std::env::temp_dir().join(format!("blindsight-ks-test-{}", std::process::id()));
    let path = dir.join("nested/file.keystore");
    keystore::write_private_atomic(&path, b"first", false).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    assert!(matches!(
        keystore::write_private_atomic(&path, b"second", false),
        Err(Error::KeystoreExists(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    // A missing keystore is a clear I/O error naming the file.
    let err = keystore::load(&dir.join("missing.keystore"), "x").unwrap_err();
    assert!(err.to_string().contains("missing.keystore"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
