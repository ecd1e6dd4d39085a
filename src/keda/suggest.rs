//! "Did you mean ...?" for unknown scalerMetadata keys: the closest known key by
//! case-insensitive Levenshtein distance, if it is close enough to be a typo.

/// Returns the known key closest to `unknown`, if within a typo's distance (at most 3
/// edits, and less than half of the unknown key's length).
pub(crate) fn closest<'a>(
    unknown: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    let limit = 3.min(lower.chars().count().div_ceil(2));
    known
        .into_iter()
        .map(|k| (levenshtein(&lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein edit distance over chars (two-row dynamic programming).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn suggests_close_keys_only() {
        let known = ["minTaskManagers", "maxTaskManagers", "jobName"];
        assert_eq!(closest("minTaskManager", known), Some("minTaskManagers"));
        assert_eq!(closest("JOBNAME", known), Some("jobName"));
        assert_eq!(closest("completelyDifferent", known), None);
        assert_eq!(closest("x", known), None);
    }
}
