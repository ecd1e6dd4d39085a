//! Reading a response body with a bound: the body is read chunk by chunk and the read
//! stops at the limit, so an upstream (or a page a URL points at) can never make the
//! scaler hold more than the limit in memory.

/// A body that could not be read in full.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the limit.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error("reading the response body failed: {0}")]
    Read(#[source] reqwest::Error),
}

/// The whole body of `response` if it holds at most `limit` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
