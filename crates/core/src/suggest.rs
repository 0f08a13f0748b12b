//! "Did you mean …?" hints with bounded work.
//!
//! A hint is the candidate nearest to a typo by edit distance. Edit distance
//! costs the product of the two lengths, and untrusted input chooses both
//! the strings and how many typos there are, so a [`Suggester`] bounds the
//! work of a whole validation:
//! - a string longer than [`MAX_COMPARED_LEN`] bytes (input or candidate)
//!   is never compared: nothing that long is an identifier, so it cannot be
//!   a typo of one;
//! - a candidate whose length differs from the input's by more than the
//!   distance allowed is skipped before any distance is computed;
//! - every candidate looked at is charged to a budget (its length, plus the
//!   product of the lengths when a distance is computed); once the budget is
//!   spent, further problems get no hint. Hints are a courtesy: the problems
//!   themselves are always reported.

use crate::model::limits;

/// Longest string, in bytes, that is compared at all: an identifier's limit.
pub const MAX_COMPARED_LEN: usize = limits::MAX_ID_LEN;

/// Work one validation may spend on hints, in character pairs compared: a
/// few tens of milliseconds at most, and enough for dozens of typos among a
/// thousand nodes.
pub const DEFAULT_BUDGET: u64 = 10_000_000;

/// Finds the nearest candidates to typos within a work budget.
#[derive(Debug, Clone)]
pub struct Suggester {
    budget: u64,
    spent: u64,
    distances: u64,
}

impl Default for Suggester {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET)
    }
}

impl Suggester {
    /// A suggester that spends at most `budget` units (see the module docs).
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            spent: 0,
            distances: 0,
        }
    }

    /// The closest candidate to `input`, if one is close enough to be a typo
    /// of it (at most a third of its characters differ, or two), and the
    /// budget allows looking.
    pub fn nearest<'a>(
        &mut self,
        input: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        if input.len() > MAX_COMPARED_LEN || self.exhausted() {
            return None;
        }
        let input_chars = input.chars().count();
        let limit = (input_chars / 3).max(2);
        let mut best: Option<(usize, &'a str)> = None;
        for candidate in candidates {
            if self.exhausted() {
                break;
            }
            self.spent += 1;
            if candidate.len() > MAX_COMPARED_LEN || candidate == input {
                continue;
            }
            let candidate_chars = candidate.chars().count();
            self.spent += candidate_chars as u64;
            if input_chars.abs_diff(candidate_chars) > limit {
                continue;
            }
            self.spent += (input_chars * candidate_chars) as u64;
            self.distances += 1;
            let distance = strsim::levenshtein(input, candidate);
            if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, candidate));
            }
        }
        best.map(|(_, candidate)| candidate)
    }

    /// Whether the budget is spent: no more hints.
    pub fn exhausted(&self) -> bool {
        self.spent >= self.budget
    }

    /// Units of work spent so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// Edit distances computed so far.
    pub fn distances(&self) -> u64 {
        self.distances
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_candidate_is_suggested_and_a_far_one_is_not() {
        let mut suggester = Suggester::default();
        let ids = ["condition-1", "invoice", "abort-flow-1"];
        assert_eq!(suggester.nearest("conditional-1", ids), Some("condition-1"));
        assert_eq!(suggester.nearest("shipment", ids), None);
        // The input itself is not a suggestion for itself.
        assert_eq!(suggester.nearest("invoice", ["invoice"]), None);
    }

    #[test]
    fn strings_longer_than_an_identifier_are_never_compared() {
        let mut suggester = Suggester::default();
        let long = "a".repeat(MAX_COMPARED_LEN + 1);
        assert_eq!(suggester.nearest(&long, [long.as_str()]), None);
        assert_eq!(
            suggester.nearest("aaa", [long.as_str(), "aab"]),
            Some("aab")
        );
        assert_eq!(suggester.distances(), 1);
    }

    #[test]
    fn candidates_of_very_different_length_are_skipped_before_any_distance() {
        let mut suggester = Suggester::default();
        let candidates: Vec<String> = (0..100)
            .map(|i| format!("node-{i}-{}", "x".repeat(60)))
            .collect();
        assert_eq!(
            suggester.nearest("node", candidates.iter().map(String::as_str)),
            None
        );
        assert_eq!(suggester.distances(), 0);
    }

    #[test]
    fn once_the_budget_is_spent_no_more_work_is_done() {
        let mut suggester = Suggester::new(10_000);
        let id = "b".repeat(MAX_COMPARED_LEN);
        let candidates: Vec<String> = (0..1_000).map(|i| format!("{i:03}{}", &id[3..])).collect();
        for _ in 0..1_000 {
            suggester.nearest(&id, candidates.iter().map(String::as_str));
        }
        assert!(suggester.exhausted());
        // One candidate may be in progress when the budget runs out.
        let one_comparison = (1 + MAX_COMPARED_LEN + MAX_COMPARED_LEN * MAX_COMPARED_LEN) as u64;
        assert!(
            suggester.spent() <= 10_000 + one_comparison,
            "{}",
            suggester.spent()
        );
        assert_eq!(suggester.nearest("abc", ["abd"]), None);
    }
}
