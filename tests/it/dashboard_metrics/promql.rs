//! A small PromQL scanner for the dashboard/alert checks: metric names of an expression
//! and the label matchers of its `metric{...}` selectors. Not a parser: it handles what
//! our queries use (aggregations with `by`/`without`, `on`/`group_left`, ranges, offsets,
//! strings and Grafana variables) and is unit-tested below.

use std::collections::BTreeSet;

/// `(label, value)` pairs of a `{...}` selector or sample label set (`a="x", b!~"y|z"`).
pub fn matchers(inner: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = inner;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\n']);
        let Some(end) = rest.find(['=', '!']) else {
            break;
        };
        let name = rest[..end].trim().to_string();
        let Some(q) = rest.find('"') else { break };
        let Some(close) = rest[q + 1..].find('"') else {
            break;
        };
        out.push((name, rest[q + 1..q + 1 + close].to_string()));
        rest = &rest[q + 1 + close + 1..];
    }
    out
}

/// Label names of a `{...}` selector or sample label set.
pub fn label_names(inner: &str) -> BTreeSet<String> {
    matchers(inner).into_iter().map(|(n, _)| n).collect()
}

/// `(metric, label names)` of every `metric{...}` selector in an expression.
pub fn selectors(expr: &str) -> Vec<(String, BTreeSet<String>)> {
    selector_matchers(expr)
        .into_iter()
        .map(|(m, ms)| (m, ms.into_iter().map(|(n, _)| n).collect()))
        .collect()
}

/// `(metric, matchers)` of every `metric{...}` selector in an expression.
pub fn selector_matchers(expr: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let name: String = rest[..open]
            .chars()
            .rev()
            .take_while(|c| is_ident_char(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        if !name.is_empty() {
            out.push((name, matchers(&rest[open + 1..close])));
        }
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out
}

/// Operators and aggregations (an aggregation may be followed by `by (...)` rather than
/// its argument list, so it is not always a call).
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "group_left",
    "group_right",
];
/// Keywords followed by a parenthesised label list.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

pub fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Metric names in a PromQL expression: identifiers that are not function calls,
/// keywords, label names (in `{}` matchers or `by (...)` lists), strings, durations or
/// Grafana variables.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    // Blank out strings, {...} matchers and [...] ranges.
    let mut chars = Vec::new();
    let (mut quote, mut depth) = (None, 0i32);
    for c in expr.chars() {
        let keep = match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                false
            }
            (Some(_), _) => false,
            (None, '"' | '\'' | '`') => {
                quote = Some(c);
                false
            }
            (None, '{' | '[') => {
                depth += 1;
                false
            }
            (None, '}' | ']') => {
                depth -= 1;
                false
            }
            _ => depth == 0,
        };
        chars.push(if keep { c } else { ' ' });
    }
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident_char(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let call = chars.get(j) == Some(&'(');
        if GROUPING.contains(&word.as_str()) {
            if call {
                while j < chars.len() && chars[j] != ')' {
                    j += 1;
                }
                i = j + 1;
            }
            continue;
        }
        let prev = start.checked_sub(1).map(|p| chars[p]);
        let number_or_var = matches!(prev, Some(p) if p == '$' || p.is_ascii_digit() || p == '.');
        if call || number_or_var || KEYWORDS.contains(&word.as_str()) {
            continue;
        }
        out.insert(chars[start..i].iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_name_extraction() {
        let got = metric_names(
            r#"sum by (job_name, le) (rate(foo_bucket{a="b", c=~"x|y"}[5m])) / on (job_name) group_left (vertex) bar offset 5m and absent(up{job="x"} == 1) > bool 1e3 unless sum(baz:rec) without (x) * time()"#,
        );
        let want: BTreeSet<String> = ["foo_bucket", "bar", "up", "baz:rec"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn selector_parsing() {
        let got = selectors(r#"sum(rate(a_total{x="1", y!~"a|b"}[5m])) / b{z="}"} + c"#);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "a_total");
        assert_eq!(
            got[0].1,
            ["x", "y"]
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>()
        );
        assert_eq!(got[1].0, "b");
    }
}
