//! An event on a contact, as `POST /lists/{id}/members/{hash}/events` takes it.

use super::member::{email_key, EmailKey};
use serde_json::{json, Map, Value};

/// What one event is made of. `occurred_at` is always sent (the record's time, or the time the
/// record was read), so that a post whose answer was lost can be recognised among the contact's
/// events instead of being sent twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub email_address: String,
    pub key: EmailKey,
    pub name: String,
    /// UTC, as `2026-11-29T12:00:00+00:00`.
    pub occurred_at: String,
    /// String values only, as Mailchimp requires.
    pub properties: Map<String, Value>,
    /// `true` keeps automations from starting on the event.
    pub is_syncing: bool,
}

impl Event {
    pub fn new(
        email_address: String,
        name: String,
        occurred_at: String,
        properties: Map<String, Value>,
    ) -> Self {
        Event {
            key: email_key(&email_address),
            email_address,
            name,
            occurred_at,
            properties,
            is_syncing: false,
        }
    }

    /// The request body.
    pub fn body(&self) -> Vec<u8> {
        let body = json!({"name": self.name, "occurred_at": self.occurred_at, "properties": self.properties,
                          "is_syncing": self.is_syncing});
        serde_json::to_vec(&body).expect("a JSON value always serializes")
    }

    /// Whether an event Mailchimp lists for the contact is this one: same name, same time (to the
    /// second, whatever offset it is written with) and same properties.
    pub fn is_listed_as(&self, listed: &Value) -> bool {
        let time = |text: &str| text.get(..19).map(str::to_string);
        listed.get("name").and_then(Value::as_str) == Some(self.name.as_str())
            && listed.get("occurred_at").and_then(Value::as_str).and_then(time) == time(&self.occurred_at)
            && listed.get("properties").and_then(Value::as_object).cloned().unwrap_or_default()
                == self.properties
    }
}

/// Mailchimp's rule for event names: 2–30 characters, letters, digits, underscores and dashes.
pub fn is_valid_event_name(name: &str) -> bool {
    (2..=30).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_mailchimps_rule() {
        for good in ["ok", "trial_started", "order-shipped", "a23456789012345678901234567890"] {
            assert!(is_valid_event_name(good), "{good}");
        }
        for bad in ["x", "", "has space", "émoji", "a234567890123456789012345678901"] {
            assert!(!is_valid_event_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_listed_event_is_recognised_by_name_time_and_properties() {
        let mut properties = Map::new();
        properties.insert("plan".into(), json!("pro"));
        let event =
            Event::new("a@b.io".into(), "upgraded".into(), "2026-11-29T12:00:00+00:00".into(), properties);
        let listed =
            json!({"name": "upgraded", "occurred_at": "2026-11-29T12:00:00Z", "properties": {"plan": "pro"}});
        assert!(event.is_listed_as(&listed));
        let other = json!({"name": "upgraded", "occurred_at": "2026-11-29T12:00:01+00:00", "properties": {"plan": "pro"}});
        assert!(!event.is_listed_as(&other));
    }
}
