//! Helpers shared by unit tests: property-test texts built from fragments that matter to
//! the code under test, mixed with random text.

use proptest::prelude::*;
use proptest::strategy::Union;

/// Texts of fewer than `max` parts, each part one of `fragments` or a random text of one of
/// the `random` regexes.
pub fn texts(
    fragments: &'static [&'static str],
    random: &'static [&'static str],
    max: usize,
) -> impl Strategy<Value = String> {
    let parts: Vec<BoxedStrategy<String>> = fragments
        .iter()
        .map(|f| Just(f.to_string()).boxed())
        .chain(random.iter().map(|&r| r.boxed()))
        .collect();
    proptest::collection::vec(Union::new(parts), 0..max).prop_map(|v| v.concat())
}
