//! The master key: supplied by the host at open, never stored by Coffer.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::SecretKey;
use crate::error::{Error, Result};

/// The 32-byte key that wraps the keyring. The host supplies it at every open, from bytes, a
/// key file, an environment variable, or its KMS; Coffer never stores it.
#[derive(Clone)]
pub struct MasterKey(pub(crate) SecretKey);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Refuses a key file that other users can read or write (like ssh does a private key): the
/// master key opens every key in the store. A container's secret volume mounts files 0644 by
/// default; mount it with mode 0400 instead.
fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| Error::Io {
            what: format!("master key file {}", path.display()),
            reason: e.to_string(),
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InvalidArgument {
                name: "master_key",
                reason: format!(
                    "the key file {} can be read or written by other users (mode {mode:03o}); make it private (chmod 600)",
                    path.display()
                ),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> Result<MasterKey> {
        SecretKey::generate().map(MasterKey)
    }

    /// A master key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey> {
        if bytes.len() != 32 {
            return Err(Error::InvalidArgument {
                name: "master_key",
                reason: format!("a master key is 32 bytes, not {}", bytes.len()),
            });
        }
        SecretKey::from_bytes(bytes).map(MasterKey)
    }

    /// A master key from text: 64 hexadecimal characters, or base64 (standard or URL-safe,
    /// padded or not) of 32 bytes. Surrounding white space is ignored.
    pub fn from_text(text: &str) -> Result<MasterKey> {
        let t = text.trim();
        let bytes: Option<Zeroizing<Vec<u8>>> =
            if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                super::from_hex(t).map(Zeroizing::new)
            } else {
                let engines = [
                    &base64::engine::general_purpose::STANDARD,
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &base64::engine::general_purpose::URL_SAFE,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ];
                engines
                    .iter()
                    .find_map(|e| e.decode(t).ok())
                    .map(Zeroizing::new)
            };
        match bytes {
            Some(b) if b.len() == 32 => Self::from_bytes(&b),
            // The text is the key: never echo it.
            _ => Err(Error::InvalidArgument {
                name: "master_key",
                reason: "expected 32 bytes as 64 hexadecimal characters or as base64".into(),
            }),
        }
    }

    /// A master key from a file holding either the 32 raw bytes or their text form.
    pub fn from_file(path: impl AsRef<Path>) -> Result<MasterKey> {
        let path = path.as_ref();
        check_private(path)?;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::Io {
            what: format!("master key file {}", path.display()),
            reason: e.to_string(),
        })?);
        if bytes.len() == 32 {
            return Self::from_bytes(&bytes);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::InvalidArgument {
            name: "master_key",
            reason: format!(
                "{} holds neither 32 raw bytes nor hexadecimal or base64 text",
                path.display()
            ),
        })?;
        Self::from_text(text).map_err(|e| naming(e, &path.display().to_string()))
    }

    /// A master key from an environment variable holding its text form (default variable:
    /// `COFFER_MASTER_KEY`).
    pub fn from_env(var: &str) -> Result<MasterKey> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| Error::InvalidArgument {
            name: "master_key",
            reason: format!("the environment variable {var} is not set or not UTF-8"),
        })?);
        Self::from_text(&value).map_err(|e| naming(e, &format!("the environment variable {var}")))
    }

    /// The key's 32 bytes, for the host to keep (wiped when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.0.expose())
    }

    /// The key as base64 text, for writing a key file (wiped when dropped).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.expose()))
    }
}

/// A key-text error that names where the text came from (never the text).
fn naming(e: Error, source: &str) -> Error {
    match e {
        Error::InvalidArgument { name, reason } => Error::InvalidArgument {
            name,
            reason: format!("{source}: {reason}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        let k = MasterKey::generate().unwrap();
        let b64 = k.to_base64();
        let again = MasterKey::from_text(&b64).unwrap();
        assert_eq!(again.0.expose(), k.0.expose());
        let hex = super::super::hex(k.0.expose());
        assert_eq!(
            MasterKey::from_text(&format!(" {hex}\n"))
                .unwrap()
                .0
                .expose(),
            k.0.expose()
        );
        let err = MasterKey::from_text("not a key at all").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        assert!(!err.to_string().contains("not a key at all"));
        // From a file, the error names the file (and still not its content).
        let dir = std::env::temp_dir().join(format!("coffer-master-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.key");
        std::fs::write(&file, "not a key at all").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Readable by others: refused before it is read.
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = MasterKey::from_file(&file).unwrap_err().to_string();
            assert!(err.contains("other users (mode 644)"), "{err}");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = MasterKey::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("bad.key"), "{err}");
        assert!(!err.contains("not a key at all"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(MasterKey::from_bytes(&[0u8; 31]).is_err());
        assert_eq!(format!("{k:?}"), "MasterKey([redacted])");
    }
}
