//! `flink.allowedUrls`: the JobManager URLs a ScaledObject may make the scaler call. A
//! rule is `scheme://host[:port][/path]`:
//!
//! * `scheme` is `http`, `https` or `*`;
//! * `host` is compared label by label: `*` matches exactly one DNS label (or IPv4 octet),
//!   `{namespace}` matches the ScaledObject's own namespace, anything else itself;
//! * `port` is a number or `*` (absent: the scheme's default port);
//! * `path` (absent or `/`: any) must be a prefix of the URL's path, segment-wise.
//!
//! The single rule `*` accepts every URL. Without the key the default depends on the
//! Kubernetes integration: on, only Services in the ScaledObject's own namespace
//! ([`KUBERNETES_DEFAULT`], the form discovery derives for a FlinkDeployment); off, every
//! URL (there is no namespace to hold it to). A URL outside the rules is refused before
//! any request is sent.

use url::Url;

/// The default rules with the Kubernetes integration on.
pub const KUBERNETES_DEFAULT: [&str; 2] = [
    "*://*.{namespace}.svc:*",
    "*://*.{namespace}.svc.cluster.local:*",
];

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    text: String,
    scheme: Option<String>,
    host: Vec<Label>,
    port: Option<u16>,
    any_port: bool,
    path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Any,
    Namespace,
    Exact(String),
}

/// The rules in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedUrls {
    rules: Vec<Rule>,
    any: bool,
    origin: &'static str,
}

/// A URL outside the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url} is not allowed by {origin} (rules for namespace '{namespace}': {rules}){hint}")]
pub struct Denied {
    /// The URL (capped).
    pub url: String,
    /// `flink.allowedUrls` or the default it stands for.
    pub origin: &'static str,
    /// The ScaledObject's namespace.
    pub namespace: String,
    /// The rules, with `{namespace}` filled in.
    pub rules: String,
    /// A hint for a short Service name.
    pub hint: String,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| format!("'{text}': expected scheme://host[:port][/path]"))?;
    let scheme = match scheme {
        "*" => None,
        "http" | "https" => Some(scheme.to_string()),
        other => {
            return Err(format!(
                "'{text}': scheme must be http, https or *, got '{other}'"
            ))
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = split_port(authority);
    if host.is_empty() || authority.contains('@') {
        return Err(format!("'{text}': has no host (or has credentials)"));
    }
    let (port, any_port) = match port {
        Some("*") => (None, true),
        Some(p) => (
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("'{text}': port '{p}' is not a number or *"))?,
            ),
            false,
        ),
        None => (scheme.as_deref().and_then(default_port), scheme.is_none()),
    };
    let host = host
        .to_ascii_lowercase()
        .split('.')
        .map(|l| match l {
            "*" => Ok(Label::Any),
            "{namespace}" => Ok(Label::Namespace),
            "" => Err(format!("'{text}': empty host label")),
            l if l.contains(['*', '{', '}']) => Err(format!(
                "'{text}': '{l}': * and {{namespace}} must be a whole host label"
            )),
            l => Ok(Label::Exact(l.to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        text: text.to_string(),
        scheme,
        host,
        port,
        any_port,
        path: segments(path),
    })
}

/// `host[:port]`, the host of an IPv6 literal in brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let (host, rest) = authority.split_at(end + 2);
        return (host, rest.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Rule {
    fn matches(&self, url: &Url, namespace: &str) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != url.scheme()) {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_end_matches('.');
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() != self.host.len() {
            return false;
        }
        let host_ok = self
            .host
            .iter()
            .zip(&labels)
            .all(|(rule, label)| match rule {
                Label::Any => !label.is_empty(),
                Label::Namespace => *label == namespace,
                Label::Exact(e) => e == label,
            });
        let port_ok = self.any_port || url.port_or_known_default() == self.port;
        let path = segments(url.path());
        host_ok && port_ok && path.len() >= self.path.len() && path.starts_with(&self.path)
    }

    fn shown(&self, namespace: &str) -> String {
        self.text.replace("{namespace}", namespace)
    }
}

impl AllowedUrls {
    /// Parses `flink.allowedUrls` (`None`: the default for `kubernetes`); errors name the
    /// rule and its index.
    pub fn parse(rules: Option<&[String]>, kubernetes: bool) -> Result<Self, (usize, String)> {
        let (texts, origin): (Vec<String>, &'static str) = match rules {
            Some(r) => (r.to_vec(), "flink.allowedUrls"),
            None if kubernetes => (
                KUBERNETES_DEFAULT.iter().map(|r| (*r).to_string()).collect(),
                "the default flink.allowedUrls with Kubernetes (Services in the ScaledObject's namespace)",
            ),
            None => (vec!["*".to_string()], "the default flink.allowedUrls without Kubernetes (any URL)"),
        };
        let any = texts.iter().any(|t| t.trim() == "*");
        let rules = texts
            .iter()
            .filter(|t| t.trim() != "*")
            .enumerate()
            .map(|(i, t)| parse_rule(t.trim()).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules, any, origin })
    }

    /// Every URL is accepted (the rule `*`).
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Accepts `url` for a ScaledObject in `namespace`, or says which rules refuse it.
    pub fn check(&self, url: &Url, namespace: &str) -> Result<(), Denied> {
        if self.any || self.rules.iter().any(|r| r.matches(url, namespace)) {
            return Ok(());
        }
        let short_name = url.host_str().is_some_and(|h| !h.contains('.'));
        Err(Denied {
            url: crate::core::text::cap(url.as_str(), 256),
            origin: self.origin,
            namespace: namespace.to_string(),
            rules: self
                .rules
                .iter()
                .map(|r| r.shown(namespace))
                .collect::<Vec<_>>()
                .join(", "),
            hint: if short_name {
                format!("; a short Service name resolves in the scaler's namespace, not the ScaledObject's: use <service>.{namespace}.svc")
            } else {
                String::new()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("a URL")
    }

    /// The Kubernetes default accepts Services of the ScaledObject's namespace only.
    #[test]
    fn kubernetes_default_is_namespace_scoped() {
        let a = AllowedUrls::parse(None, true).expect("default");
        assert!(a
            .check(&url("http://orders-rest.team-a.svc:8081"), "team-a")
            .is_ok());
        assert!(a
            .check(&url("https://jm.team-a.svc.cluster.local/"), "team-a")
            .is_ok());
        let other = a
            .check(&url("http://orders-rest.team-b.svc:8081"), "team-a")
            .expect_err("another namespace");
        assert!(other.to_string().contains("*://*.team-a.svc:*"), "{other}");
        let short = a
            .check(&url("http://flink-jobmanager:8081"), "team-a")
            .expect_err("short name");
        assert!(
            short.to_string().contains("use <service>.team-a.svc"),
            "{short}"
        );
        assert!(a.check(&url("http://10.0.0.7:8081"), "team-a").is_err());
        assert!(a
            .check(&url("http://x.y.team-a.svc:8081"), "team-a")
            .is_err());
        let off = AllowedUrls::parse(None, false).expect("default off");
        assert!(off.allows_any());
        assert!(off.check(&url("http://anything:1"), "x").is_ok());
    }

    /// Scheme, port and path prefix of explicit rules.
    #[test]
    fn explicit_rules() {
        let rules: Vec<String> = vec![
            "https://flink.example.com/team-a".into(),
            "http://127.0.0.1:*".into(),
        ];
        let a = AllowedUrls::parse(Some(&rules), true).expect("parses");
        assert!(a
            .check(&url("https://flink.example.com/team-a/jm1"), "n")
            .is_ok());
        assert!(a
            .check(&url("https://flink.example.com:443/team-a"), "n")
            .is_ok());
        assert!(a
            .check(&url("https://flink.example.com/team-ab"), "n")
            .is_err());
        assert!(a
            .check(&url("http://flink.example.com/team-a"), "n")
            .is_err());
        assert!(a
            .check(&url("https://flink.example.com:8443/team-a"), "n")
            .is_err());
        assert!(a.check(&url("http://127.0.0.1:43123/"), "n").is_ok());
        let v6 = AllowedUrls::parse(Some(&["http://[::1]:*".to_string()]), false).expect("v6");
        assert!(v6.check(&url("http://[::1]:8081/"), "n").is_ok());
        let bad = |r: &str| AllowedUrls::parse(Some(&[r.to_string()]), false).expect_err(r);
        assert!(bad("flink.example.com").1.contains("expected scheme://"));
        assert!(bad("ftp://x").1.contains("scheme must be"));
        assert!(bad("http://a*.b").1.contains("whole host label"));
        assert!(bad("http://x:port").1.contains("not a number"));
        assert!(bad("http://u@x").1.contains("credentials"));
    }
}
