//! Replays every input kept for the fuzz targets (`fuzz/corpus/<target>` and
//! `fuzz/regressions/<target>`) through them: what once crashed a target stays fixed, and what
//! libFuzzer found interesting keeps running, on stable Rust with no fuzzer installed.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

#[test]
fn every_kept_input_runs_clean() {
    let mut replayed = 0;
    for target in sfu_fuzz::TARGETS {
        for kind in ["corpus", "regressions"] {
            for input in inputs(&fuzz_dir().join(kind).join(target.name)) {
                // A fuzzer running beside the test may replace a file it has just listed.
                let Ok(data) = std::fs::read(&input) else { continue };
                let started = std::time::Instant::now();
                let outcome = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(outcome.is_ok(), "{} failed on {}", target.name, input.display());
                if started.elapsed() > std::time::Duration::from_secs(1) {
                    eprintln!("slow: {} took {:?} on {}", target.name, started.elapsed(), input.display());
                }
                replayed += 1;
            }
        }
    }
    eprintln!("replayed {replayed} inputs");
}

#[test]
fn every_target_has_a_kept_corpus_and_a_fuzz_binary() {
    for target in sfu_fuzz::TARGETS {
        let corpus = fuzz_dir().join("corpus").join(target.name);
        assert!(!inputs(&corpus).is_empty(), "no corpus kept in {}", corpus.display());
        let binary = fuzz_dir().join("fuzz_targets").join(format!("{}.rs", target.name));
        let source = std::fs::read_to_string(&binary).unwrap_or_default();
        assert!(
            source.contains(&format!("sfu_fuzz::{}(", target.name)),
            "{} does not run the target",
            binary.display()
        );
    }
}

/// Empty, tiny and large inputs of every shape: no target may panic on what any input can be.
#[test]
fn trivial_inputs_run_clean() {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for target in sfu_fuzz::TARGETS {
        for data in [&[][..], &[0], &[0xff; 3], &[0; 64], &[0xff; 64], &big[..]] {
            (target.run)(data);
        }
    }
}
