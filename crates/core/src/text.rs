//! Bounds on caller-supplied text quoted back in errors and logs (a 10 kB scalerMetadata
//! value must not become a 10 kB message KEDA logs on every poll), and the DNS-1123 label
//! check Kubernetes names (namespaces, metric names) must pass.

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
pub fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text[..end].to_string();
    out.push(ellipsis);
    out
}

/// A DNS-1123 label: 1–63 lower-case letters, digits and `-`, not starting or ending in
/// `-` (a namespace name; what KEDA requires of a metric name).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::{cap, is_dns_label};

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("team-a1"));
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }

    /// Short text is kept; long text is cut on a character boundary within the bound.
    #[test]
    fn caps_on_char_boundaries() {
        assert_eq!(cap("short", 10), "short");
        let long = "é".repeat(100);
        let c = cap(&long, 11);
        assert!(c.len() <= 11 && c.ends_with('…'), "{c}");
        assert_eq!(c, "éééé…");
    }
}
