//! Credentials for requests: a bearer token or a basic-auth password read from a file
//! that is re-read whenever its modification time or size changes (rotated Kubernetes
//! tokens keep working), or a password from an environment variable.
//!
//! `Debug` never prints a secret.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use reqwest::header::HeaderValue;

use super::{
    endpoint::{Auth, PasswordSource},
    error::{ClientBuildError, CredentialError, QueryError},
};

/// A secret kept in memory, printed as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value; only for building a request header.
    pub fn expose(&self) -> &str {
        &self.0
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

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileSecret {
    /// Reads the file once (so a missing file fails at startup) and caches it.
    pub fn load(path: &Path, what: &'static str) -> Result<Self, ClientBuildError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClientBuildError::ReadFile {
            what,
            path: path.to_path_buf(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(ClientBuildError::EmptyCredential {
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

    /// The current secret: cached unless the file's mtime or size changed.
    pub fn current(&self) -> Result<Secret, QueryError> {
        let cred_err = |source: CredentialError| QueryError::Credentials {
            origin: format!("file {}", self.path.display()),
            source,
        };
        let meta = std::fs::metadata(&self.path).map_err(|e| cred_err(CredentialError::Io(e)))?;
        let stamp = FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        };
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| cred_err(CredentialError::Poisoned))?;
        if let Some((cached, secret)) = cache.as_ref() {
            if *cached == stamp && stamp.modified.is_some() {
                return Ok(secret.clone());
            }
        }
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| cred_err(CredentialError::Io(e)))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(cred_err(CredentialError::Empty));
        }
        let secret = Secret(value.to_string());
        *cache = Some((stamp, secret.clone()));
        Ok(secret)
    }
}

/// The credentials a client sends.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// No `Authorization` header.
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
    pub fn from_auth(auth: &Auth) -> Result<Self, ClientBuildError> {
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
                let value = std::env::var(var)
                    .map_err(|_| ClientBuildError::MissingEnv { var: var.clone() })?;
                if value.is_empty() {
                    return Err(ClientBuildError::EmptyCredential {
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
    /// response excerpts can be scrubbed of it), or `None`.
    pub fn header(&self) -> Result<Option<(HeaderValue, Secret)>, QueryError> {
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
        let mut header = HeaderValue::from_str(&value).map_err(|_| QueryError::Credentials {
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

    /// Secrets are redacted in Debug output and scrubbed from text.
    #[test]
    fn secrets_never_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(
            scrub("bad token hunter2!", Some(&s)),
            "bad token <redacted>!"
        );
    }
}
