//! Credentials for requests: a bearer token or a basic-auth password read from a file
//! that is re-read whenever its modification time, size or inode changes (rotated
//! Kubernetes tokens keep working), or a password from an environment variable; and the
//! constant-time check of a bearer token a server receives.
//!
//! `Debug` never prints a secret.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use reqwest::header::HeaderValue;
use subtle::ConstantTimeEq;

use crate::{
    error::{CredentialError, FilesError, SecretError},
    stamp::FileStamp,
};

/// A secret kept in memory, printed as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value; only for building a request header or comparing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when `candidate` equals the secret, in time independent of where they differ
    /// (the length is not hidden).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A file-backed secret, cached and re-read when the file changes.
#[derive(Debug)]
pub struct FileSecret {
    path: PathBuf,
    cache: Mutex<Option<(FileStamp, Secret)>>,
}

impl FileSecret {
    /// Reads the file once (so a missing or empty file fails at start-up) and caches it.
    pub fn load(path: &Path, what: &'static str) -> Result<Self, FilesError> {
        let text = std::fs::read_to_string(path).map_err(|source| FilesError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(FilesError::EmptyCredential {
                what: format!("{what} file {}", path.display()),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            cache: Mutex::new(None),
        })
    }

    /// `file <path>`, for errors.
    pub fn origin(&self) -> String {
        format!("file {}", self.path.display())
    }

    /// The current secret: cached unless the file's stamp changed.
    pub fn current(&self) -> Result<Secret, SecretError> {
        let err = |source: CredentialError| SecretError {
            origin: self.origin(),
            source,
        };
        let stamp = FileStamp::of(&self.path);
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| err(CredentialError::Poisoned))?;
        if let (Some((cached, secret)), Some(now)) = (cache.as_ref(), stamp) {
            if *cached == now {
                return Ok(secret.clone());
            }
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| err(CredentialError::Io(e)))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(err(CredentialError::Empty));
        }
        let secret = Secret(value.to_string());
        if let Some(now) = stamp {
            *cache = Some((now, secret.clone()));
        }
        Ok(secret)
    }
}

/// Where the `Authorization` header of a client comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Bearer <token>`, the token read from this file (re-read when it changes).
    BearerTokenFile(PathBuf),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Where the password comes from.
        password: PasswordSource,
    },
}

/// A basic-auth password's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file (re-read when it changes).
    File(PathBuf),
    /// An environment variable (read once when the client is built).
    Env(String),
}

/// The credentials a client sends.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>` from a file.
    Bearer(Arc<FileSecret>),
    /// `Authorization: Basic ...` with a password from a file.
    BasicFile {
        /// User name.
        username: String,
        /// Password file.
        password: Arc<FileSecret>,
    },
    /// `Authorization: Basic ...` with a password read from the environment at build.
    BasicStatic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

impl Credentials {
    /// Builds credentials, reading files/env once.
    pub fn from_auth(auth: &Auth) -> Result<Self, FilesError> {
        match auth {
            Auth::None => Ok(Credentials::None),
            Auth::BearerTokenFile(path) => Ok(Credentials::Bearer(Arc::new(FileSecret::load(
                path,
                "bearer token",
            )?))),
            Auth::Basic {
                username,
                password: PasswordSource::File(path),
            } => Ok(Credentials::BasicFile {
                username: username.clone(),
                password: Arc::new(FileSecret::load(path, "basic auth password")?),
            }),
            Auth::Basic {
                username,
                password: PasswordSource::Env(var),
            } => {
                let value =
                    std::env::var(var).map_err(|_| FilesError::MissingEnv { var: var.clone() })?;
                if value.is_empty() {
                    return Err(FilesError::EmptyCredential {
                        what: format!("env var {var}"),
                    });
                }
                Ok(Credentials::BasicStatic {
                    username: username.clone(),
                    password: Secret(value),
                })
            }
        }
    }

    /// The `Authorization` header value (marked sensitive) and the raw secret (so that
    /// text copied from a response can be scrubbed of it), or `None`.
    pub fn header(&self) -> Result<Option<(HeaderValue, Secret)>, SecretError> {
        let (value, secret, origin) = match self {
            Credentials::None => return Ok(None),
            Credentials::Bearer(file) => {
                let token = file.current()?;
                (format!("Bearer {}", token.expose()), token, file.origin())
            }
            Credentials::BasicFile { username, password } => {
                let pw = password.current()?;
                (basic_value(username, pw.expose()), pw, password.origin())
            }
            Credentials::BasicStatic { username, password } => (
                basic_value(username, password.expose()),
                password.clone(),
                "auth.basic.passwordEnv".to_string(),
            ),
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| SecretError {
            origin,
            source: CredentialError::NotHeaderValue,
        })?;
        header.set_sensitive(true);
        Ok(Some((header, secret)))
    }
}

fn basic_value(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{username}:{password}").as_bytes())
    )
}

/// Standard base64 with padding (RFC 4648), enough for a basic-auth header.
fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Replaces every occurrence of `secret` in `text` with `<redacted>`.
pub fn scrub(text: &str, secret: Option<&Secret>) -> String {
    match secret {
        Some(s) if !s.expose().is_empty() => text.replace(s.expose(), "<redacted>"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 test vectors.
    #[test]
    fn base64_matches_rfc4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), want, "{input}");
        }
    }

    /// Secrets are redacted in Debug output, scrubbed from text, compared exactly.
    #[test]
    fn secrets_never_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(
            scrub("bad token hunter2!", Some(&s)),
            "bad token <redacted>!"
        );
        assert!(s.matches(b"hunter2"));
        assert!(!s.matches(b"hunter3"));
        assert!(!s.matches(b"hunter"));
    }

    /// A rotated token file is picked up; an emptied one is an error naming the file.
    #[test]
    fn file_secrets_follow_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").expect("write");
        let f = FileSecret::load(&path, "bearer token").expect("loads");
        assert_eq!(f.current().expect("read").expose(), "first");
        std::fs::write(&path, "second-and-longer").expect("rotate");
        assert_eq!(f.current().expect("reread").expose(), "second-and-longer");
        std::fs::write(&path, "  ").expect("empty");
        let e = f.current().expect_err("empty");
        assert!(e.to_string().contains("token unusable: empty"), "{e}");
        assert!(FileSecret::load(&dir.path().join("none"), "bearer token").is_err());
    }
}
