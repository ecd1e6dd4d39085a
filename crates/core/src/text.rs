//! Bounds on caller-supplied text quoted back in errors and logs (a 10 kB scalerMetadata
//! value must not become a 10 kB message KEDA logs on every poll).

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

#[cfg(test)]
mod tests {
    use super::cap;

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
