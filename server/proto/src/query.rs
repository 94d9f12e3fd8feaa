//! Query strings and path segments, percent-encoded the one way both sides agree on.

use std::fmt::Display;

/// Percent-encodes `s` for a path segment or a query value (RFC 3986 unreserved characters
/// are kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `name=value&…` from the parameters that are present.
#[derive(Default)]
pub(crate) struct QueryString(Vec<String>);

impl QueryString {
    pub(crate) fn opt<T: Display>(&mut self, name: &str, value: Option<T>) {
        if let Some(v) = value {
            self.0
                .push(format!("{name}={}", percent_encode(&v.to_string())));
        }
    }

    pub(crate) fn finish(self) -> String {
        self.0.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(percent_encode("a b/c~d"), "a%20b%2Fc~d");
        let mut q = QueryString::default();
        q.opt("cohort", Some("x&y"));
        q.opt::<i64>("since", None);
        q.opt("limit", Some(5));
        assert_eq!(q.finish(), "cohort=x%26y&limit=5");
    }
}
