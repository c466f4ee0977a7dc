//! The one list-merge rule every planner applies to a list of mirrors (or insecure hosts):
//! the wanted entries, compared normalised, in the given order — first, or appended — with the
//! user's spelling kept for entries already there; entries mirrorctl owned before and no longer
//! wants are dropped; every other entry (the user's) stays, in its order.

/// The merged list and the normalised entries mirrorctl owns in it.
pub struct Merged {
    pub list: Vec<String>,
    pub owned: Vec<String>,
}

/// Merge `want` into `current`. `owned_before(n)` tells whether mirrorctl added the entry whose
/// normalised form is `n` on an earlier run.
pub fn merge(
    current: &[String],
    want: &[String],
    norm: impl Fn(&str) -> String,
    owned_before: impl Fn(&str) -> bool,
    front: bool,
) -> Merged {
    let want_norm: Vec<String> = want.iter().map(|w| norm(w)).collect();
    let mut wanted: Vec<String> = Vec::new();
    let mut owned = Vec::new();
    for (w, spelled) in want_norm.iter().zip(want) {
        if wanted.iter().any(|t| norm(t) == *w) {
            continue;
        }
        let existing = current.iter().find(|c| norm(c) == *w);
        wanted.push(existing.unwrap_or(spelled).clone());
        if existing.is_none() || owned_before(w) {
            owned.push(w.clone());
        }
    }
    let keep = |c: &String| {
        let n = norm(c);
        !(want_norm.contains(&n) || owned_before(&n))
    };
    let list = if front {
        let mut l = wanted;
        l.extend(current.iter().filter(|c| keep(c)).cloned());
        l
    } else {
        // The user's order, wanted entries where they already are, missing ones appended.
        let mut l: Vec<String> = Vec::new();
        for c in current {
            let n = norm(c);
            if keep(c) || (want_norm.contains(&n) && !l.iter().any(|x| norm(x) == n)) {
                l.push(c.clone());
            }
        }
        for w in wanted {
            if !l.iter().any(|x| norm(x) == norm(&w)) {
                l.push(w);
            }
        }
        l
    };
    Merged { list, owned }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn lower(x: &str) -> String {
        x.to_ascii_lowercase()
    }

    #[test]
    fn wanted_first_users_kept_stale_dropped() {
        let m = merge(
            &s(&["U", "old", "B"]),
            &s(&["a", "b"]),
            lower,
            |n| n == "old",
            true,
        );
        assert_eq!(m.list, s(&["a", "B", "U"]));
        assert_eq!(m.owned, s(&["a"]), "B was the user's");
        let m = merge(&s(&["U", "old"]), &s(&["a"]), lower, |n| n == "old", false);
        assert_eq!(m.list, s(&["U", "a"]));
        let m = merge(&s(&["a", "U"]), &[], lower, |n| n == "a", true);
        assert_eq!(m.list, s(&["U"]));
        assert!(m.owned.is_empty());
    }
}
