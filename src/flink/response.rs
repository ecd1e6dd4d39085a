//! What the client keeps of a Flink REST response, and what it never keeps: a body is
//! read up to [`MAX_BODY_BYTES`]; of an error answer only Flink's structured `errors`
//! field is kept (stack frames dropped, capped at [`MAX_ERROR_MESSAGE`]); a body that is
//! not Flink's JSON is described by its size and where parsing stopped, never quoted. So
//! whatever page a URL points at, its content reaches neither KEDA nor the log.

use fks_core::text::cap;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::error::{DecodeError, FlinkError};

/// Largest response body read (the details of a large job are a few MiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Longest message kept from Flink's `errors` field.
pub const MAX_ERROR_MESSAGE: usize = 1024;
/// Longest identifier (vertex id, JSON path) quoted from a body in an error.
pub const MAX_QUOTED_ID: usize = 64;

/// An identifier taken from a response body, for an error message: at most
/// [`MAX_QUOTED_ID`] bytes, control characters replaced.
pub fn quote_id(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    cap(&clean, MAX_QUOTED_ID)
}

/// Where and how a body failed to parse as JSON, without quoting it (serde's own
/// messages quote the offending values).
pub fn json_problem(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "JSON of another shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} (at line {} column {})", e.line(), e.column())
}

/// Decodes a successful answer into `T`; an error names the JSON path and the position,
/// never a value of the body.
pub fn decode<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, FlinkError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        FlinkError::Decode {
            what: what.to_string(),
            source: DecodeError::Json {
                path: quote_id(&path),
                problem: json_problem(e.inner()),
                bytes: text.len(),
            },
        }
    })
}

/// Flink's error body `{"errors": ["…", "<Exception on server side: …>"]}` → one message
/// (capped); any other body → its size only.
pub fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    match serde_json::from_str::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => cap(
            &e.errors
                .iter()
                .map(|m| first_meaningful_line(m))
                .collect::<Vec<_>>()
                .join("; "),
            MAX_ERROR_MESSAGE,
        ),
        _ if body.trim().is_empty() => "empty body".to_string(),
        _ => format!(
            "not a Flink REST error ({} bytes without an `errors` field, not shown)",
            body.len()
        ),
    }
}

/// For server-side stack traces keep the message lines (`…Exception: message`, the
/// validation messages, `Caused by:`), not the frames.
fn first_meaningful_line(m: &str) -> String {
    let lines: Vec<&str> = m
        .lines()
        .map(str::trim)
        .filter(|l| {
            let frame = l.starts_with("at ") || (l.starts_with("...") && l.ends_with("more"));
            let wrapper = l.starts_with("<Exception on server side")
                || l.starts_with("End of exception on server side");
            !(l.is_empty() || frame || wrapper)
        })
        .collect();
    cap(&lines.join(" | "), 800)
}

/// A non-success status → the typed error. `job` is the job the path is about (for 404
/// / job-not-found mapping).
pub fn map_status(what: &str, job: Option<&str>, status: StatusCode, body: &str) -> FlinkError {
    if status.is_redirection() {
        return FlinkError::Redirect {
            what: what.to_string(),
            status: status.as_u16(),
        };
    }
    let message = error_message(body);
    let job_id = job.unwrap_or_default().to_string();
    let job_missing = body.contains("FlinkJobNotFoundException")
        || body.contains("Could not find Flink job")
        || body.contains("JobNotFound");
    if job.is_some() && (status == StatusCode::NOT_FOUND || job_missing) {
        return FlinkError::JobGone { job_id, message };
    }
    if status == StatusCode::CONFLICT {
        return FlinkError::Conflict { job_id, message };
    }
    // Reactive mode answers 500 with "Cannot change the parallelism of a job running in
    // reactive mode." from AdaptiveScheduler itself: not a missing adaptive scheduler.
    if body.contains("UnsupportedOperationException") && body.contains("reactive mode") {
        return FlinkError::ReactiveMode { job_id, message };
    }
    if body.contains("UnsupportedOperationException")
        && (body.contains("AdaptiveScheduler") || body.contains("without a job restart"))
    {
        return FlinkError::AdaptiveSchedulerRequired { job_id, message };
    }
    if status == StatusCode::BAD_REQUEST {
        return FlinkError::BadRequest {
            what: what.to_string(),
            message,
        };
    }
    FlinkError::Http {
        what: what.to_string(),
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_keeps_root_cause_lines() {
        let body = r#"{"errors":["Internal server error.","<Exception on server side:\njava.util.concurrent.CompletionException: java.lang.UnsupportedOperationException: The DefaultScheduler does not support changing the parallelism without a job restart.\n\tat a.b.C(C.java:1)\nCaused by: java.lang.UnsupportedOperationException: The DefaultScheduler does not support changing the parallelism without a job restart.\n\tat x.y(Z.java:2)\n\nEnd of exception on server side>"]}"#;
        let m = error_message(body);
        assert!(m.starts_with("Internal server error.; "), "{m}");
        assert!(
            m.contains("Caused by: java.lang.UnsupportedOperationException"),
            "{m}"
        );
        assert!(!m.contains("C.java"), "{m}");
        let e = map_status("PUT /x", Some("j"), StatusCode::INTERNAL_SERVER_ERROR, body);
        assert_eq!(e.kind(), "adaptive_scheduler_required");
        assert!(e.to_string().contains("jobmanager.scheduler: adaptive"));
    }

    #[test]
    fn status_mapping() {
        let b =
            r#"{"errors":["Another update to the job [x] resource requirements is in progress."]}"#;
        assert_eq!(
            map_status("PUT", Some("x"), StatusCode::CONFLICT, b).kind(),
            "conflict"
        );
        assert_eq!(
            map_status("GET", Some("x"), StatusCode::NOT_FOUND, "{}").kind(),
            "job_gone"
        );
        assert_eq!(
            map_status("GET", None, StatusCode::NOT_FOUND, "{}").kind(),
            "http"
        );
        let nf = r#"{"errors":["org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job (abc)"]}"#;
        assert_eq!(
            map_status("GET", Some("abc"), StatusCode::INTERNAL_SERVER_ERROR, nf).kind(),
            "job_gone"
        );
        let bad = r#"{"errors":["The request is incomplete, missing job vertex [v] resource requirements."]}"#;
        let e = map_status("PUT", Some("x"), StatusCode::BAD_REQUEST, bad);
        assert_eq!(e.kind(), "bad_request");
        assert!(e.to_string().contains("missing job vertex [v]"));
        let moved = map_status("GET", None, StatusCode::FOUND, "<a href=x>");
        assert_eq!(moved.kind(), "redirect");
    }

    /// A body that is not Flink's error JSON, or JSON of another shape, is never quoted.
    #[test]
    fn foreign_bodies_are_never_quoted() {
        let page = "<html>db_password=hunter2</html>";
        let e = map_status("GET /jobs/overview", None, StatusCode::BAD_GATEWAY, page);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("32 bytes"), "{e}");
        let shaped = r#"{"jobs": [{"jid": "hunter2", "name": 1}]}"#;
        let e = decode::<super::super::model::JobsOverview>("GET /jobs/overview", shaped)
            .expect_err("not a job id");
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("jobs[0].jid"), "{text}");
        assert!(text.contains("JSON of another shape"), "{text}");
        let capped = error_message(&format!(r#"{{"errors":["{}"]}}"#, "x".repeat(5000)));
        assert!(capped.len() <= MAX_ERROR_MESSAGE + 4, "{}", capped.len());
    }
}
