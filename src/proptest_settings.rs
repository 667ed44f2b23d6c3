//! The proptest settings every property test of the crate starts from.
//!
//! proptest keeps each case that once failed and replays it first on every later run; by
//! default it writes those cases into a `proptest-regressions/` directory beside `src/`.
//! deflect keeps them with the other test inputs, in `tests/proptest-regressions/` (one
//! file per source file, as `text/normalizer.txt` for `src/text/normalizer.rs`), so the
//! repository's top level holds only what README's "Layout" lists.

use proptest::test_runner::{Config, FileFailurePersistence};

/// Returns proptest's default settings, with failed cases kept under `tests/`.
pub(crate) fn regressions_kept_in_tests() -> Config {
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "tests/proptest-regressions",
        ))),
        ..Config::default()
    }
}
