//! How a claim shares workers across companies. Claiming strictly by due
//! time would let one company's backlog of 100,000 runs delay every other
//! company's runs behind it; instead each claim first hands its slots out
//! max-min fairly by the runs each company already has in flight (a company
//! with none goes first), and only the slots no company's share used are
//! filled by due time. Both backends claim this way (`sqlite/runs.rs`,
//! `postgres/runs.rs`); this module is the policy, without I/O.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A company with queued runs, and how many of them are leased right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuedCompany {
    pub company_id: String,
    pub in_flight: u64,
}

/// How many of `limit` slots each company gets: one slot at a time to the
/// company with the fewest runs in flight counting the slots it was given,
/// ties to the company listed first. Companies given nothing are left out.
pub(crate) fn fair_shares(companies: &[QueuedCompany], limit: usize) -> Vec<(&str, usize)> {
    let mut given = vec![0_usize; companies.len()];
    let mut next: BinaryHeap<Reverse<(u64, usize)>> = companies
        .iter()
        .enumerate()
        .map(|(index, company)| Reverse((company.in_flight, index)))
        .collect();
    for _ in 0..limit {
        let Some(Reverse((load, index))) = next.pop() else {
            break;
        };
        given[index] += 1;
        next.push(Reverse((load.saturating_add(1), index)));
    }
    companies
        .iter()
        .zip(given)
        .filter(|(_, slots)| *slots > 0)
        .map(|(company, slots)| (company.company_id.as_str(), slots))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn companies(loads: &[(&str, u64)]) -> Vec<QueuedCompany> {
        loads
            .iter()
            .map(|(id, in_flight)| QueuedCompany {
                company_id: (*id).to_owned(),
                in_flight: *in_flight,
            })
            .collect()
    }

    #[test]
    fn a_company_with_nothing_in_flight_goes_before_a_busy_one() {
        let queued = companies(&[("busy", 511), ("quiet", 0)]);
        assert_eq!(fair_shares(&queued, 1), vec![("quiet", 1)]);
    }

    #[test]
    fn slots_level_the_companies_in_flight_counts() {
        let queued = companies(&[("a", 10), ("b", 4), ("c", 0)]);
        // c is raised to 4, then b and c to 10 (6 each), then one each.
        assert_eq!(
            fair_shares(&queued, 19),
            vec![("a", 1), ("b", 7), ("c", 11)]
        );
    }

    #[test]
    fn equal_companies_share_equally() {
        let queued = companies(&[("a", 0), ("b", 0)]);
        assert_eq!(fair_shares(&queued, 256), vec![("a", 128), ("b", 128)]);
    }

    #[test]
    fn no_companies_or_no_slots_share_nothing() {
        assert!(fair_shares(&[], 10).is_empty());
        assert!(fair_shares(&companies(&[("a", 0)]), 0).is_empty());
    }
}
