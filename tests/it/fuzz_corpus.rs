//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry
//! points as the `cargo fuzz` targets (`flink_keda_scaler::fuzzing`), then mutates each
//! corpus input (byte flips, truncation, splices of random bytes) with proptest: the
//! libFuzzer-free fallback that runs in every CI build on the stable toolchain.

use std::path::PathBuf;

use flink_keda_scaler::fuzzing;
use proptest::{prelude::*, strategy::ValueTree};

type Target = fn(&[u8]) -> Result<(), String>;

const TARGETS: [(&str, Target); 3] = [
    ("scaler_metadata", fuzzing::scaler_metadata),
    ("prometheus_response", fuzzing::prometheus_response),
    ("flink_responses", fuzzing::flink_responses),
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).expect("read");
            (p, data)
        })
        .collect();
    files.sort();
    files
}

/// Every corpus input of every target: no panic, bounded messages.
#[test]
fn corpus_replays_cleanly() {
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        assert!(inputs.len() >= 3, "{name}: corpus too small");
        for (path, data) in inputs {
            if let Err(broken) = target(&data) {
                panic!("{}: {broken}", path.display());
            }
        }
    }
}

/// A corpus input with some bytes overwritten and its tail cut or extended.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    (
        prop::collection::vec((0..len, any::<u8>()), 0..8),
        0..=len,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(move |(flips, cut, tail)| {
            let mut out = seed.clone();
            for (at, b) in flips {
                if at < out.len() {
                    out[at] = b;
                }
            }
            out.truncate(cut);
            out.extend(tail);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Mutations of the corpus inputs: no panic, bounded messages.
    #[test]
    fn mutated_corpus_inputs(pick in any::<prop::sample::Index>(), which in 0usize..3) {
        let (name, target) = TARGETS[which];
        let inputs = corpus(name);
        let seed = inputs[pick.index(inputs.len())].1.clone();
        let runner_inputs = mutated(seed);
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..20 {
            let data = runner_inputs.new_tree(&mut runner).expect("tree").current();
            prop_assert!(target(&data).is_ok(), "{name}: {:?}", target(&data));
        }
    }
}
