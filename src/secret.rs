//! Secrets (tokens) and their redaction.
//!
//! A [`Secret`] never prints its value (`Debug` and `Display` show `***`). Every secret that
//! benchctl reads is also registered here, so [`redact`] can scrub it from any text that leaves
//! the process (error messages, engine or Tracker answers echoed to the user).

use std::sync::{Mutex, OnceLock};

fn registry() -> &'static Mutex<Vec<String>> {
    static REG: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(Vec::new()))
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value and registers it for redaction.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into().trim().to_string();
        if value.len() >= 4 {
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            if !reg.contains(&value) {
                reg.push(value.clone());
            }
        }
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Replaces every registered secret in `text` with `***`.
pub fn redact(text: &str) -> String {
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for s in reg.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_are_redacted() {
        let s = Secret::new("canary-0123456789");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(redact("token canary-0123456789 leaked"), "token *** leaked");
    }
}
