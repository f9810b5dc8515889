//! Record values → what Mailchimp accepts: merge-field values by type, and member attributes.
//! `Ok(None)` means "nothing to send" (null or empty: a sync never erases a value);
//! `Err(reason)` means the value cannot be converted and is dropped from that member.

use serde_json::{json, Map, Number, Value};
use std::net::IpAddr;

/// Mailchimp truncates text merge values to 255 bytes; we cut on a character boundary ourselves.
pub const TEXT_LIMIT: usize = 255;

/// The member attributes a record field can set, by the field's name.
pub const ATTRIBUTES: [&str; 8] =
    ["language", "vip", "email_type", "ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt", "location"];

pub type Converted = Result<Option<Value>, String>;

/// Converts a value for a merge field of the given Mailchimp type.
pub fn merge_value(kind: &str, options: &Value, value: &Value) -> Converted {
    if is_blank(value) {
        return Ok(None);
    }
    let format = options.get("date_format").and_then(Value::as_str).filter(|f| !f.is_empty());
    let converted = match kind {
        "number" => number(value)?,
        "date" => {
            let (y, m, d) = date_parts(value)?;
            Value::String(render_date(format.unwrap_or("YYYY-MM-DD"), y, m, d))
        }
        "birthday" => {
            let (m, d) = birthday_parts(value)?;
            Value::String(render_date(format.unwrap_or("MM/DD"), 0, m, d))
        }
        "address" => address(value)?,
        "radio" | "dropdown" => choice(options, value)?,
        "phone" | "zip" | "url" | "imageurl" => Value::String(scalar_text(value)?),
        _ => Value::String(truncate(scalar_text(value)?, TEXT_LIMIT)),
    };
    Ok(Some(converted))
}

/// Converts a value for a member attribute (one of [`ATTRIBUTES`]).
pub fn attribute_value(name: &str, value: &Value) -> Converted {
    if is_blank(value) {
        return Ok(None);
    }
    let converted = match name {
        "vip" => Value::Bool(boolean(value)?),
        "email_type" => match value.as_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some(t @ ("html" | "text")) => json!(t),
            _ => return Err("email_type must be 'html' or 'text'".into()),
        },
        "ip_signup" | "ip_opt" => match value.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok()) {
            Some(ip) => json!(ip.to_string()),
            None => return Err("not an IPv4 or IPv6 address".into()),
        },
        "timestamp_signup" | "timestamp_opt" => json!(timestamp(value)?),
        "location" => location(value)?,
        "language" => match value.as_str().map(str::trim) {
            Some(code)
                if code.len() <= 10
                    && code.chars().all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-') =>
            {
                json!(code)
            }
            _ => return Err("not a language code such as 'en' or 'pt_BR'".into()),
        },
        other => return Err(format!("'{other}' is not a member attribute")),
    };
    Ok(Some(converted))
}

/// Merge-field types whose value is plain text (sent as the record's string, possibly cut).
pub fn is_text_kind(kind: &str) -> bool {
    !matches!(kind, "number" | "date" | "birthday" | "address" | "radio" | "dropdown")
}

/// A string for a text-kind merge field, moved rather than copied: the same result as
/// [`merge_value`] gives for a string.
pub fn text_value(kind: &str, text: String) -> Option<Value> {
    if text.trim().is_empty() {
        return None;
    }
    Some(Value::String(match kind {
        "phone" | "zip" | "url" | "imageurl" => text,
        _ => truncate(text, TEXT_LIMIT),
    }))
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn scalar_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("not a text value (an object or a list)".into()),
    }
}

/// Cuts to at most `limit` bytes without splitting a character.
pub fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn number(value: &Value) -> Result<Value, String> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            s.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "not a number".into())
        }
        _ => Err("not a number".into()),
    }
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err("not true or false".into()),
        },
        _ => Err("not true or false".into()),
    }
}

/// Year, month, day of an ISO date (`YYYY-MM-DD`, `YYYY/MM/DD`) or date-time.
fn date_parts(value: &Value) -> Result<(u32, u32, u32), String> {
    let text = value.as_str().map(str::trim).ok_or("not a date")?;
    let bytes = text.as_bytes();
    let well_formed = bytes.len() >= 10
        && bytes[4] == bytes[7]
        && matches!(bytes[4], b'-' | b'/')
        && (bytes.len() == 10 || matches!(bytes[10], b'T' | b't' | b' '));
    let number = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<u32>().ok());
    match (well_formed, number(0..4), number(5..7), number(8..10)) {
        (true, Some(y), Some(m), Some(d)) if valid_day(y, m, d) => Ok((y, m, d)),
        _ => Err("not a date (expected YYYY-MM-DD or an ISO date-time)".into()),
    }
}

/// Month and day of a birthday: an ISO date or date-time, or `MM/DD`.
fn birthday_parts(value: &Value) -> Result<(u32, u32), String> {
    if let Some(text) = value.as_str().map(str::trim) {
        if text.len() == 5 && text.as_bytes()[2] == b'/' {
            if let (Ok(m), Ok(d)) = (text[..2].parse::<u32>(), text[3..].parse::<u32>()) {
                if valid_day(2000, m, d) {
                    return Ok((m, d));
                }
            }
        }
    }
    date_parts(value)
        .map(|(_, m, d)| (m, d))
        .map_err(|_| "not a birthday (expected YYYY-MM-DD or MM/DD)".into())
}

fn valid_day(year: u32, month: u32, day: u32) -> bool {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// Writes a date in a Mailchimp `date_format` such as `MM/DD/YYYY`, `DD/MM/YYYY` or `MM/DD`.
fn render_date(format: &str, year: u32, month: u32, day: u32) -> String {
    format
        .replace("YYYY", &format!("{year:04}"))
        .replace("MM", &format!("{month:02}"))
        .replace("DD", &format!("{day:02}"))
}

/// `YYYY-MM-DD HH:MM:SS`, the form Mailchimp takes for signup and opt-in times.
fn timestamp(value: &Value) -> Result<String, String> {
    let (y, m, d) = date_parts(value).map_err(|_| "not a date-time")?;
    let text = value.as_str().unwrap_or("").trim();
    let time = text.get(11..19).filter(|t| {
        let b = t.as_bytes();
        b[2] == b':' && b[5] == b':' && t.chars().filter(char::is_ascii_digit).count() == 6
    });
    Ok(format!("{y:04}-{m:02}-{d:02} {}", time.unwrap_or("00:00:00")))
}

fn address(value: &Value) -> Result<Value, String> {
    let Value::Object(fields) = value else { return Err("not an address object".into()) };
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(|v| scalar_text(v).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let missing: Vec<&str> =
        ["addr1", "city", "state", "zip"].into_iter().filter(|k| text(k).is_none()).collect();
    if !missing.is_empty() {
        return Err(format!("incomplete address (missing {})", missing.join(", ")));
    }
    let mut out = Map::new();
    for key in ["addr1", "addr2", "city", "state", "zip", "country"] {
        if let Some(v) = text(key) {
            out.insert(key.into(), Value::String(v));
        }
    }
    Ok(Value::Object(out))
}

fn choice(options: &Value, value: &Value) -> Result<Value, String> {
    let given = scalar_text(value)?;
    let choices: Vec<&str> = options
        .get("choices")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    choices
        .iter()
        .find(|c| c.trim().eq_ignore_ascii_case(given.trim()))
        .map(|c| json!(c))
        .ok_or_else(|| format!("not one of the field's choices ({})", choices.join(", ")))
}

fn location(value: &Value) -> Result<Value, String> {
    let coordinate = |key: &str, limit: f64| {
        value.get(key).and_then(|v| number(v).ok()).and_then(|n| n.as_f64()).filter(|x| x.abs() <= limit)
    };
    match (coordinate("latitude", 90.0), coordinate("longitude", 180.0)) {
        (Some(latitude), Some(longitude)) => Ok(json!({"latitude": latitude, "longitude": longitude})),
        _ => Err("not a location with latitude and longitude".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_text_gives_what_converting_it_gives() {
        let long = "é".repeat(300);
        for kind in ["text", "phone", "zip", "url", "imageurl", "some_new_kind"] {
            assert!(is_text_kind(kind));
            for text in ["Ada", "  ", "", " padded ", long.as_str()] {
                let expected = merge_value(kind, &json!({}), &json!(text)).unwrap();
                assert_eq!(text_value(kind, text.to_string()), expected, "{kind}: {text:?}");
            }
        }
        for kind in ["number", "date", "birthday", "address", "radio", "dropdown"] {
            assert!(!is_text_kind(kind));
        }
    }

    fn merge(kind: &str, options: Value, value: Value) -> Converted {
        merge_value(kind, &options, &value)
    }

    #[test]
    fn text_takes_scalars_and_cuts_to_255_bytes_on_a_character_boundary() {
        assert_eq!(merge("text", json!({}), json!(true)), Ok(Some(json!("true"))));
        assert_eq!(merge("text", json!({}), json!(42)), Ok(Some(json!("42"))));
        let long = "é".repeat(200);
        let cut = merge("text", json!({}), json!(long)).unwrap().unwrap();
        assert_eq!(cut.as_str().unwrap().len(), 254);
        assert!(merge("text", json!({}), json!({"a": 1})).is_err());
        assert_eq!(merge("text", json!({}), json!(null)), Ok(None));
        assert_eq!(merge("text", json!({}), json!("  ")), Ok(None));
    }

    #[test]
    fn numbers_dates_and_birthdays() {
        assert_eq!(merge("number", json!({}), json!(" 12 ")), Ok(Some(json!(12))));
        assert_eq!(merge("number", json!({}), json!("1.5")), Ok(Some(json!(1.5))));
        assert!(merge("number", json!({}), json!("twelve")).is_err());
        assert_eq!(
            merge("date", json!({"date_format": "MM/DD/YYYY"}), json!("1990-07-04")),
            Ok(Some(json!("07/04/1990")))
        );
        assert_eq!(
            merge("date", json!({"date_format": "DD/MM/YYYY"}), json!("1990-07-04T10:00:00Z")),
            Ok(Some(json!("04/07/1990")))
        );
        assert_eq!(merge("date", json!({}), json!("1990/07/04")), Ok(Some(json!("1990-07-04"))));
        assert!(merge("date", json!({}), json!("1990-02-30")).is_err());
        assert!(merge("date", json!({}), json!("04.07.1990")).is_err());
        assert_eq!(
            merge("birthday", json!({"date_format": "MM/DD"}), json!("1990-07-04")),
            Ok(Some(json!("07/04")))
        );
        assert_eq!(merge("birthday", json!({}), json!("12/31")), Ok(Some(json!("12/31"))));
        assert_eq!(
            merge("birthday", json!({"date_format": "DD/MM"}), json!("2001-12-31T23:00:00+02:00")),
            Ok(Some(json!("31/12")))
        );
        assert!(merge("birthday", json!({}), json!("13/01")).is_err());
    }

    #[test]
    fn addresses_must_be_complete() {
        let full = json!({"addr1": "1 Main St", "city": "Atlanta", "state": "GA", "zip": 30301, "country": "US", "extra": 1});
        assert_eq!(
            merge("address", json!({}), full),
            Ok(Some(
                json!({"addr1": "1 Main St", "city": "Atlanta", "state": "GA", "zip": "30301", "country": "US"})
            ))
        );
        assert_eq!(
            merge("address", json!({}), json!({"addr1": "1 Main St"})),
            Err("incomplete address (missing city, state, zip)".into())
        );
        assert!(merge("address", json!({}), json!("1 Main St")).is_err());
    }

    #[test]
    fn choices_are_matched_ignoring_case_and_sent_in_their_spelling() {
        let options = json!({"choices": ["Gold", "Silver"]});
        assert_eq!(merge("dropdown", options.clone(), json!("gold")), Ok(Some(json!("Gold"))));
        assert!(merge("radio", options, json!("Bronze")).unwrap_err().contains("Gold, Silver"));
    }

    #[test]
    fn member_attributes() {
        assert_eq!(attribute_value("vip", &json!("yes")), Ok(Some(json!(true))));
        assert!(attribute_value("vip", &json!("maybe")).is_err());
        assert_eq!(attribute_value("email_type", &json!("HTML")), Ok(Some(json!("html"))));
        assert_eq!(attribute_value("ip_signup", &json!("203.0.113.10")), Ok(Some(json!("203.0.113.10"))));
        assert!(attribute_value("ip_opt", &json!("999.1.1.1")).is_err());
        assert_eq!(
            attribute_value("timestamp_signup", &json!("2026-09-13T10:04:00Z")),
            Ok(Some(json!("2026-09-13 10:04:00")))
        );
        assert_eq!(
            attribute_value("timestamp_opt", &json!("2026-09-13")),
            Ok(Some(json!("2026-09-13 00:00:00")))
        );
        assert_eq!(
            attribute_value("location", &json!({"latitude": "33.7", "longitude": -84.4})),
            Ok(Some(json!({"latitude": 33.7, "longitude": -84.4})))
        );
        assert!(attribute_value("location", &json!({"latitude": 95, "longitude": 0})).is_err());
        assert_eq!(attribute_value("language", &json!("pt_BR")), Ok(Some(json!("pt_BR"))));
        assert!(attribute_value("language", &json!("not a language")).is_err());
    }
}
