//! Pins: a pinned bench is never expired by `--ttl` (nor, later, slept or evicted). A pin is a
//! never-started marker container `benchctl-pin.<issue>` with labels (the engine is the source
//! of truth: no state outside it), optionally until a time.

use crate::engine::{labels, Engine};
use crate::Result;
use serde::Serialize;
use std::collections::HashMap;

const UNTIL: &str = "benchctl.pin.until";

/// One pin.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pin {
    pub issue: String,
    /// Unix seconds it ends at (`None`: until unpinned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl Pin {
    /// Whether it holds at `now`.
    pub fn holds(&self, now: u64) -> bool {
        self.until.is_none_or(|u| now < u)
    }
}

fn pin_name(issue: &str) -> String {
    // a dot: no bench of an issue (`benchctl-<slug>`, a DNS-safe slug) can have this name
    format!("benchctl-pin.{}", crate::naming::slug(issue, 60))
}

/// Pins `issue`'s bench (replacing a pin it had).
pub async fn pin(engine: &Engine, issue: &str, until: Option<u64>) -> Result<Pin> {
    let name = pin_name(issue);
    let mut l = HashMap::new();
    l.insert(labels::MANAGED.to_string(), "true".to_string());
    l.insert(labels::ROLE.to_string(), "pin".to_string());
    l.insert(labels::ISSUE.to_string(), issue.to_string());
    if let Some(u) = until {
        l.insert(UNTIL.to_string(), u.to_string());
    }
    if let Some(old) = engine.markers.get(&name).await? {
        engine.markers.remove(&old).await?;
    }
    engine.markers.create(&name, &l).await?;
    Ok(Pin {
        issue: issue.to_string(),
        until,
    })
}

/// Unpins `issue`; `false` when it was not pinned.
pub async fn unpin(engine: &Engine, issue: &str) -> Result<bool> {
    match engine.markers.get(&pin_name(issue)).await? {
        Some(m) => {
            engine.markers.remove(&m).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Every pin, found by label (those past their time included).
pub async fn pins(engine: &Engine) -> Result<Vec<Pin>> {
    let found = engine.markers.list(&labels::role_filter("pin")).await?;
    Ok(found
        .into_iter()
        .filter_map(|m| {
            Some(Pin {
                issue: m.labels.get(labels::ISSUE)?.clone(),
                until: m.labels.get(UNTIL).and_then(|u| u.parse().ok()),
            })
        })
        .collect())
}

/// The pin of `issue` among `pins` that holds at `now`.
pub fn active<'a>(pins: &'a [Pin], issue: &str, now: u64) -> Option<&'a Pin> {
    pins.iter().find(|p| p.issue == issue && p.holds(now))
}

/// Whether a Tracker issue (its JSON) carries `tag` among its `tags`, an array of strings, as
/// the Tracker's API reference gives them:
/// https://yandex.ru/support/tracker/en/api-ref/issues/response-fields (`--pin-tag`).
pub fn tagged(issue: &serde_json::Value, tag: &str) -> bool {
    issue["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag)))
}

/// `--until`: a date (`2026-12-31`, the end of that day, UTC) or a duration from now (`7d`).
pub fn parse_until(text: &str, now: u64) -> Option<u64> {
    if let Some(d) = crate::app::gc::parse_duration(text) {
        return Some(now + d.as_secs());
    }
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d): (i64, u32, u32) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm), then the end of that day
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((days + 1) * 86_400).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_a_date_or_a_duration() {
        assert_eq!(parse_until("7d", 1000), Some(1000 + 7 * 86_400));
        // 2026-12-31 ends at 2027-01-01T00:00:00Z
        assert_eq!(parse_until("2026-12-31", 0), Some(1_798_761_600));
        assert_eq!(
            crate::clock::utc(parse_until("2024-02-29", 0).unwrap()),
            "2024-03-01 00:00:00 UTC"
        );
        assert_eq!(parse_until("2026-13-01", 0), None);
        assert_eq!(parse_until("soon", 0), None);
        let p = Pin {
            issue: "A-1".into(),
            until: Some(10),
        };
        assert!(p.holds(9) && !p.holds(10));
    }
}
