//! `GET /debug/jobs` for a large fleet: filtered by namespace and name, paginated by a
//! cursor, bounded in size (at most [`MAX_LIMIT`] reports, each with capped issues, see
//! [`cap_issues`]).
//!
//! Query parameters (all optional): `namespace` (exact), `name` (substring of the
//! ScaledObject name), `errors=true` (only jobs whose last tick failed), `limit`
//! (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]), `after` (the `next` cursor of the
//! previous page: a `namespace/name`). The answer: `{"jobs": [...], "total": <matching>,
//! "next": "<cursor>" | null}`, jobs ordered by `namespace/name`.

use std::sync::Arc;

use serde::Deserialize;

use super::worker::StoredReport;

/// Reports per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;
/// Issues kept per job report (the rest are counted in `issues_dropped`).
pub const MAX_ISSUES: usize = 20;
/// Characters kept of one issue.
pub const MAX_ISSUE_CHARS: usize = 512;

/// The query string of `GET /debug/jobs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only ScaledObjects of this namespace.
    pub namespace: Option<String>,
    /// Only ScaledObjects whose name contains this.
    pub name: Option<String>,
    /// Only jobs whose last tick failed.
    #[serde(default)]
    pub errors: bool,
    /// Reports per page.
    pub limit: Option<usize>,
    /// Reports after this `namespace/name` (the previous page's `next`).
    pub after: Option<String>,
}

/// One page of reports, or the message of a 400 naming the bad parameter.
pub fn page(reports: &[Arc<StoredReport>], q: &JobsQuery) -> Result<serde_json::Value, String> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        ));
    }
    let matching: Vec<&Arc<StoredReport>> = reports.iter().filter(|r| matches(r, q)).collect();
    let start = match &q.after {
        Some(after) => matching.partition_point(|r| r.scaled_object.as_str() <= after.as_str()),
        None => 0,
    };
    let page: Vec<&Arc<StoredReport>> = matching.iter().skip(start).take(limit).copied().collect();
    let next = (start + page.len() < matching.len())
        .then(|| page.last().map(|r| r.scaled_object.clone()))
        .flatten();
    let jobs: Vec<serde_json::Value> = page
        .iter()
        .map(|r| {
            r.json().unwrap_or_else(
                |e| serde_json::json!({ "scaled_object": r.scaled_object, "error": e }),
            )
        })
        .collect();
    Ok(serde_json::json!({
        "jobs": jobs,
        "total": matching.len(),
        "next": next,
    }))
}

fn matches(r: &StoredReport, q: &JobsQuery) -> bool {
    let (namespace, name) = r
        .scaled_object
        .split_once('/')
        .unwrap_or(("", r.scaled_object.as_str()));
    q.namespace.as_deref().is_none_or(|n| n == namespace)
        && q.name.as_deref().is_none_or(|n| name.contains(n))
        && (!q.errors || r.failed)
}

/// At most [`MAX_ISSUES`] issues of at most [`MAX_ISSUE_CHARS`] characters each, and
/// how many were dropped.
pub fn cap_issues(issues: &[String]) -> (Vec<String>, usize) {
    let kept = issues
        .iter()
        .take(MAX_ISSUES)
        .map(|i| match i.char_indices().nth(MAX_ISSUE_CHARS) {
            Some((end, _)) => format!("{}…", &i[..end]),
            None => i.clone(),
        })
        .collect();
    (kept, issues.len().saturating_sub(MAX_ISSUES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::worker::JobReport;

    fn report(ns: &str, name: &str, error: bool) -> Arc<StoredReport> {
        let mut r = JobReport::named(format!("{ns}/{name}"), chrono::Utc::now());
        if error {
            r.error = Some("boom".into());
        }
        Arc::new(StoredReport::new(&r))
    }

    fn names(v: &serde_json::Value) -> Vec<String> {
        v["jobs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|j| j["scaled_object"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn fleet() -> Vec<Arc<StoredReport>> {
        let mut v: Vec<_> = (0..5)
            .flat_map(|i| {
                [
                    report("prod", &format!("orders-{i}"), i == 3),
                    report("staging", &format!("orders-{i}"), false),
                ]
            })
            .collect();
        v.sort_by(|a, b| a.scaled_object.cmp(&b.scaled_object));
        v
    }

    #[test]
    fn a_stored_report_inflates_to_the_report_it_was_made_from() {
        let mut r = JobReport::named("prod/orders".into(), chrono::Utc::now());
        r.error = Some("x".repeat(4000));
        r.issues = vec!["the same issue".into(); 50];
        let stored = StoredReport::new(&r);
        let json = serde_json::to_value(&r).expect("serializes");
        assert_eq!(stored.json(), Ok(json.clone()));
        assert!(
            stored.deflated_len() * 10 < json.to_string().len(),
            "deflated"
        );
    }

    #[test]
    fn pages_through_a_namespace_with_a_cursor() {
        let reports = fleet();
        let q = |after: Option<&str>| JobsQuery {
            namespace: Some("prod".into()),
            limit: Some(2),
            after: after.map(str::to_string),
            ..JobsQuery::default()
        };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let p = page(&reports, &q(after.as_deref())).expect("page");
            assert_eq!(p["total"], 5);
            seen.extend(names(&p));
            match p["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
        }
        let expected: Vec<String> = (0..5).map(|i| format!("prod/orders-{i}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn filters_by_name_and_errors_and_rejects_bad_limits() {
        let reports = fleet();
        let p = page(
            &reports,
            &JobsQuery {
                name: Some("-3".into()),
                ..JobsQuery::default()
            },
        )
        .expect("page");
        assert_eq!(names(&p), ["prod/orders-3", "staging/orders-3"]);
        assert_eq!(p["next"], serde_json::Value::Null);
        let p = page(
            &reports,
            &JobsQuery {
                errors: true,
                ..JobsQuery::default()
            },
        )
        .expect("page");
        assert_eq!(names(&p), ["prod/orders-3"]);
        for limit in [0, MAX_LIMIT + 1] {
            let e = page(
                &reports,
                &JobsQuery {
                    limit: Some(limit),
                    ..JobsQuery::default()
                },
            )
            .expect_err("bad limit");
            assert!(e.contains("limit"), "{e}");
        }
    }

    #[test]
    fn caps_issues_in_count_and_length() {
        let issues: Vec<String> = (0..25)
            .map(|i| format!("{i}:{}", "x".repeat(600)))
            .collect();
        let (kept, dropped) = cap_issues(&issues);
        assert_eq!((kept.len(), dropped), (MAX_ISSUES, 5));
        assert_eq!(kept[0].chars().count(), MAX_ISSUE_CHARS + 1);
        assert!(kept[0].ends_with('…'));
        assert_eq!(
            cap_issues(&["short".to_string()]),
            (vec!["short".into()], 0)
        );
    }
}
