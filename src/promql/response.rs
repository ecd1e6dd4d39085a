//! Decoding of Prometheus HTTP API responses (`/api/v1/query`, `/api/v1/query_range`)
//! into samples and series. Handles the `vector`, `matrix`, `scalar` and `string` result
//! types, `status: error` bodies (→ PromQL error or HTTP error with Prometheus' message)
//! and NaN/±Inf values (kept as data here; callers decide). The result array is counted
//! before it is decoded and refused above the client's series bound, then decoded one
//! element at a time, so memory follows the rows kept, not a JSON tree of the body.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{de::IgnoredAny, Deserialize};
use serde_json::{value::RawValue, Value};

use fks_core::text::cap;

use super::error::QueryError;

/// Longest piece of a response body (a value, a resultType, Prometheus' own error text)
/// quoted in an error: a hostile or broken upstream must not become a megabyte message
/// (found by `cargo fuzz run prometheus_response`: a 6 kB `resultType` was echoed whole).
const MAX_QUOTED: usize = 128;
/// Longest Prometheus error text (`error` of an error body) kept in an error.
const MAX_API_ERROR: usize = 512;

/// Why a response body is not the Prometheus API JSON we expect.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The body is not JSON, or not the API envelope.
    #[error("{}", cap(&.0.to_string(), MAX_API_ERROR))]
    Json(#[source] serde_json::Error),
    /// The body exceeds the client's bound.
    #[error("response body larger than {limit} bytes (prometheus.<name>.maxResponseBytes); narrow the query or its matchers")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// The result holds more series than the client's bound.
    #[error("{count} series exceed the limit of {limit} (prometheus.<name>.maxSeries); narrow the query or its matchers")]
    TooManySeries {
        /// Series in the result.
        count: usize,
        /// The bound.
        limit: usize,
    },
    /// `status: success` without `data`.
    #[error("status success without data")]
    NoData,
    /// A `resultType` this client does not know.
    #[error("unknown resultType {0:?}")]
    UnknownResultType(String),
    /// A part of the result that must be an array is not.
    #[error("{0} is not an array")]
    NotArray(&'static str),
    /// A series' `metric` is not a string map.
    #[error("bad metric labels: {}", cap(&.0.to_string(), MAX_API_ERROR))]
    Labels(#[source] serde_json::Error),
    /// A vector element without `value` (a native histogram).
    #[error("vector element without value (native histograms are not supported)")]
    NoValue,
    /// A sample that is not `[timestamp, value]`.
    #[error("sample is not a [timestamp, value] pair")]
    NotPair,
    /// A timestamp that is not a finite number of seconds.
    #[error("bad timestamp {0}")]
    Timestamp(String),
    /// A sample value that is not a JSON string.
    #[error("sample value {0} is not a string")]
    ValueNotString(String),
    /// A sample value that is not a number (`"1.5"`, `"NaN"`, `"+Inf"`).
    #[error("sample value {0:?} is not a number")]
    NotANumber(String),
    /// A `string` result without its timestamp.
    #[error("string result without timestamp")]
    StringWithoutTimestamp,
    /// A `string` result without its text.
    #[error("string result without text")]
    StringWithoutText,
}

/// One sample of an instant query: a series' labels and its value at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label set (`__name__` included when the query keeps it). Empty for scalars.
    pub labels: BTreeMap<String, String>,
    /// Evaluation timestamp.
    pub at: DateTime<Utc>,
    /// Value; may be NaN or ±Inf.
    pub value: f64,
}

impl Sample {
    /// A label value, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Label set.
    pub labels: BTreeMap<String, String>,
    /// Points in time order; values may be NaN or ±Inf.
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// The decoded `data` of a successful response.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    /// `vector` (instant query).
    Vector(Vec<Sample>),
    /// `matrix` (range query, or a range selector in an instant query).
    Matrix(Vec<Series>),
    /// `scalar`: one value, no labels.
    Scalar(Sample),
    /// `string`: the text, and its numeric value if it parses as one.
    String {
        /// Timestamp.
        at: DateTime<Utc>,
        /// The string.
        text: String,
    },
}

impl QueryData {
    /// Result type name as Prometheus spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "matrix",
            QueryData::Scalar(_) => "scalar",
            QueryData::String { .. } => "string",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    status: String,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    result_type: String,
    #[serde(borrow)]
    result: &'a RawValue,
}

/// A decoded successful response: the data and Prometheus' warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The result.
    pub data: QueryData,
    /// `warnings` (e.g. partial responses from Thanos).
    pub warnings: Vec<String>,
}

const EXCERPT_LEN: usize = 200;

/// Decodes a response body given its HTTP status, with no bound on the series.
pub fn decode(status: u16, body: &[u8], endpoint: &str) -> Result<Decoded, QueryError> {
    decode_capped(status, body, endpoint, usize::MAX)
}

/// Decodes a response body given its HTTP status; more than `max_series` series is
/// [`ResponseError::TooManySeries`]. `endpoint` is used in errors.
pub fn decode_capped(
    status: u16,
    body: &[u8],
    endpoint: &str,
    max_series: usize,
) -> Result<Decoded, QueryError> {
    let envelope = envelope(status, body, endpoint)?;
    let malformed = |source: ResponseError| QueryError::MalformedJson {
        endpoint: endpoint.to_string(),
        source,
    };
    let data = envelope
        .data
        .ok_or_else(|| malformed(ResponseError::NoData))?;
    Ok(Decoded {
        data: result(&data, max_series).map_err(malformed)?,
        warnings: envelope.warnings,
    })
}

/// The API envelope of a successful answer; an error status or an API error body is
/// the matching [`QueryError`] (a PromQL error, or an HTTP error with its message).
fn envelope<'a>(status: u16, body: &'a [u8], endpoint: &str) -> Result<Envelope<'a>, QueryError> {
    let success = (200..300).contains(&status);
    let http_error = |message| QueryError::HttpStatus {
        endpoint: endpoint.to_string(),
        status,
        message,
    };
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) if success => {
            return Err(QueryError::MalformedJson {
                endpoint: endpoint.to_string(),
                source: ResponseError::Json(e),
            })
        }
        Err(_) => return Err(http_error(excerpt(body))),
    };
    if envelope.status != "success" {
        let error = cap(&envelope.error.unwrap_or_default(), MAX_API_ERROR);
        let error_type = cap(&envelope.error_type.unwrap_or_default(), MAX_QUOTED);
        // 5xx/429 with an API error body (timeout, unavailable) is a server problem.
        if status >= 500 || status == 429 {
            return Err(http_error(Some(format!("{error_type}: {error}"))));
        }
        return Err(QueryError::PromQl { error_type, error });
    }
    if !success {
        return Err(http_error(excerpt(body)));
    }
    Ok(envelope)
}

/// The `data.result` of each result type.
fn result(data: &Data<'_>, max_series: usize) -> Result<QueryData, ResponseError> {
    Ok(match data.result_type.as_str() {
        "vector" => QueryData::Vector(each(data.result, max_series, parse_sample)?),
        "matrix" => QueryData::Matrix(each(data.result, max_series, parse_series)?),
        "scalar" => {
            let (at, value) = parse_point(&json(data.result)?)?;
            QueryData::Scalar(Sample {
                labels: BTreeMap::new(),
                at,
                value,
            })
        }
        "string" => {
            let result = json(data.result)?;
            let pair = as_array(&result, "string result")?;
            let at = pair
                .first()
                .and_then(Value::as_f64)
                .and_then(timestamp)
                .ok_or(ResponseError::StringWithoutTimestamp)?;
            let text = pair
                .get(1)
                .and_then(Value::as_str)
                .ok_or(ResponseError::StringWithoutText)?;
            QueryData::String {
                at,
                text: text.to_string(),
            }
        }
        other => return Err(ResponseError::UnknownResultType(cap(other, MAX_QUOTED))),
    })
}

/// A small raw JSON value as a tree.
fn json(raw: &RawValue) -> Result<Value, ResponseError> {
    serde_json::from_str(raw.get()).map_err(ResponseError::Json)
}

/// Decodes the elements of the result array one at a time, after counting them (a
/// counting pass allocates nothing per element) and refusing more than `max_series`.
fn each<T>(
    raw: &RawValue,
    max_series: usize,
    parse: fn(&Value) -> Result<T, ResponseError>,
) -> Result<Vec<T>, ResponseError> {
    let count = serde_json::from_str::<Vec<IgnoredAny>>(raw.get())
        .map_err(|_| ResponseError::NotArray("result"))?
        .len();
    if count > max_series {
        return Err(ResponseError::TooManySeries {
            count,
            limit: max_series,
        });
    }
    let elements: Vec<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| ResponseError::NotArray("result"))?;
    elements.into_iter().map(|e| parse(&json(e)?)).collect()
}

fn excerpt(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut cut: String = text.chars().take(EXCERPT_LEN).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    Some(cut)
}

fn as_array<'a>(v: &'a Value, what: &'static str) -> Result<&'a Vec<Value>, ResponseError> {
    v.as_array().ok_or(ResponseError::NotArray(what))
}

fn labels(v: &Value) -> Result<BTreeMap<String, String>, ResponseError> {
    match v.get("metric") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(m) => serde_json::from_value(m.clone()).map_err(ResponseError::Labels),
    }
}

fn parse_sample(v: &Value) -> Result<Sample, ResponseError> {
    let value = v.get("value").ok_or(ResponseError::NoValue)?;
    let (at, value) = parse_point(value)?;
    Ok(Sample {
        labels: labels(v)?,
        at,
        value,
    })
}

fn parse_series(v: &Value) -> Result<Series, ResponseError> {
    let points = match v.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(values) => as_array(values, "values")?
            .iter()
            .map(parse_point)
            .collect::<Result<_, _>>()?,
    };
    Ok(Series {
        labels: labels(v)?,
        points,
    })
}

/// Parses `[<unix seconds>, "<value>"]`.
fn parse_point(v: &Value) -> Result<(DateTime<Utc>, f64), ResponseError> {
    let pair = as_array(v, "sample")?;
    let (Some(ts), Some(val)) = (pair.first(), pair.get(1)) else {
        return Err(ResponseError::NotPair);
    };
    let at = ts
        .as_f64()
        .and_then(timestamp)
        .ok_or_else(|| ResponseError::Timestamp(cap(&ts.to_string(), MAX_QUOTED)))?;
    let text = val
        .as_str()
        .ok_or_else(|| ResponseError::ValueNotString(cap(&val.to_string(), MAX_QUOTED)))?;
    Ok((at, parse_value(text)?))
}

/// Parses a Prometheus sample value (`"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
pub fn parse_value(text: &str) -> Result<f64, ResponseError> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| ResponseError::NotANumber(cap(text, MAX_QUOTED)))
}

fn timestamp(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces of a body quoted in errors are capped (a fuzz finding: a 6 kB resultType was
    /// echoed whole), as is Prometheus' own error text.
    #[test]
    fn quoted_pieces_are_capped() {
        let long = "6".repeat(10_000);
        let bodies = [
            format!(r#"{{"status":"success","data":{{"resultType":"m{long}","result":[]}}}}"#),
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"x{long}"]}}]}}}}"#
            ),
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,{long}]}}]}}}}"#
            ),
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"a":1{long}}},"value":[1,"1"]}}]}}}}"#
            ),
            format!(r#"{{"status":"error","errorType":"bad_data","error":"{long}"}}"#),
        ];
        for (i, body) in bodies.iter().enumerate() {
            for status in [200, 400, 500] {
                let e = decode(status, body.as_bytes(), "http://p").expect_err("malformed");
                let message = e.to_string();
                assert!(
                    message.len() < 1200,
                    "body {i}, status {status}: {} bytes",
                    message.len()
                );
            }
        }
    }

    /// Vector results keep every series with its labels; NaN/Inf are data.
    #[test]
    fn vector_with_special_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"task_id":"a"},"value":[1700000000.5,"12.5"]},
            {"metric":{"task_id":"b"},"value":[1700000000.5,"NaN"]},
            {"metric":{"task_id":"c"},"value":[1700000000.5,"+Inf"]},
            {"metric":{"task_id":"d"},"value":[1700000000.5,"-Inf"]}]}}"#;
        let d = decode(200, body, "e").expect("decodes");
        let QueryData::Vector(v) = d.data else {
            panic!("expected vector, got {:?}", d.data)
        };
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].label("task_id"), Some("a"));
        assert_eq!(v[0].value, 12.5);
        assert_eq!(v[0].at.timestamp_millis(), 1_700_000_000_500);
        assert!(v[1].value.is_nan());
        assert_eq!(v[2].value, f64::INFINITY);
        assert_eq!(v[3].value, f64::NEG_INFINITY);
    }

    /// More series than the bound is an error naming the limit, never a partial answer.
    #[test]
    fn series_bound() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"task_id":"a"},"value":[1,"1"]},
            {"metric":{"task_id":"b"},"value":[1,"2"]},
            {"metric":{"task_id":"c"},"value":[1,"3"]}]}}"#;
        assert!(decode_capped(200, body, "e", 3).is_ok());
        let e = decode_capped(200, body, "e", 2).expect_err("over the bound");
        let msg = e.to_string();
        assert!(msg.contains("3 series exceed the limit of 2"), "{msg}");
        assert!(msg.contains("maxSeries"), "{msg}");
    }

    /// Scalar and string result types decode.
    #[test]
    fn scalar_and_string() {
        let d = decode(
            200,
            br#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}}"#,
            "e",
        )
        .expect("scalar");
        assert!(
            matches!(d.data, QueryData::Scalar(ref s) if s.value == 3.0 && s.labels.is_empty())
        );
        let d = decode(
            200,
            br#"{"status":"success","data":{"resultType":"string","result":[1.0,"hello"]}}"#,
            "e",
        )
        .expect("string");
        assert!(matches!(d.data, QueryData::String { ref text, .. } if text == "hello"));
    }

    /// Error bodies map to PromQL errors (4xx) or HTTP errors (5xx), non-JSON to HTTP errors.
    #[test]
    fn error_bodies() {
        let e = decode(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            "e",
        )
        .expect_err("bad_data");
        assert!(
            matches!(e, QueryError::PromQl { ref error_type, ref error } if error_type == "bad_data" && error == "parse error")
        );
        let e = decode(
            503,
            br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#,
            "e",
        )
        .expect_err("timeout");
        assert!(
            matches!(e, QueryError::HttpStatus { status: 503, ref message, .. } if message.as_deref() == Some("timeout: query timed out"))
        );
        assert!(e.is_retryable());
        let e = decode(502, b"<html>Bad Gateway</html>", "e").expect_err("502");
        assert!(
            matches!(e, QueryError::HttpStatus { status: 502, ref message, .. } if message.as_deref() == Some("<html>Bad Gateway</html>"))
        );
        let e = decode(200, b"not json", "e").expect_err("malformed");
        assert_eq!(e.kind(), "malformed_json");
        let e = decode(200, br#"{"status":"success"}"#, "e").expect_err("no data");
        assert_eq!(e.kind(), "malformed_json");
        let e = decode(
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
            "e",
        )
        .expect_err("bad value");
        assert!(e.to_string().contains("\"x\" is not a number"), "{e}");
    }

    /// Matrix results keep points in order.
    #[test]
    fn matrix() {
        let d = decode(
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[
              {"metric":{"tm_id":"t1"},"values":[[10,"1"],[20,"2"]]}]}}"#,
            "e",
        )
        .expect("matrix");
        let QueryData::Matrix(m) = d.data else {
            panic!("expected matrix")
        };
        let values: Vec<f64> = m[0].points.iter().map(|p| p.1).collect();
        assert_eq!(values, vec![1.0, 2.0]);
        assert_eq!(m[0].points[1].0.timestamp(), 20);
    }
}
