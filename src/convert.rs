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
        "zip" => Value::String(zip(value)?),
        "phone" => Value::String(phone(options, value)?),
        "url" | "imageurl" => Value::String(url(value)?),
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
    !matches!(
        kind,
        "number"
            | "date"
            | "birthday"
            | "address"
            | "radio"
            | "dropdown"
            | "zip"
            | "phone"
            | "url"
            | "imageurl"
    )
}

/// A string for a text-kind merge field: the same result as [`merge_value`] gives for a string
/// (blank: nothing; cut to Mailchimp's limit on a character boundary), without a copy.
pub fn text_value(text: &str) -> Option<&str> {
    if text.trim().is_empty() {
        return None;
    }
    let mut end = text.len().min(TEXT_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(&text[..end])
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

/// A boolean: true or false, 1 or 0, "yes" or "no", "true" or "false" (any case).
pub fn boolean(value: &Value) -> Result<bool, String> {
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

/// `YYYY-MM-DD HH:MM:SS` in UTC, the form Mailchimp takes for signup and opt-in times (API
/// reference, list members: `timestamp_signup`, `timestamp_opt`). A time with an offset
/// (`+02:00`, `-0500`, `Z`) is converted to UTC, so that the instant is kept; a time without one is
/// taken as UTC, and a date alone as midnight UTC. Fractions of a second are dropped.
fn timestamp(value: &Value) -> Result<String, String> {
    const NOT: &str = "not a date-time (expected an ISO 8601 date-time such as 2024-05-06T07:08:09+02:00)";
    let (y, m, d) = date_parts(value).map_err(|_| NOT)?;
    let text = value.as_str().unwrap_or("").trim();
    if text.len() == 10 {
        return Ok(format!("{y:04}-{m:02}-{d:02} 00:00:00"));
    }
    let field = |range: std::ops::Range<usize>, max: u32| {
        text.get(range)
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|v| *v <= max)
    };
    let colons = text.as_bytes().get(13) == Some(&b':') && text.as_bytes().get(16) == Some(&b':');
    let (Some(hour), Some(minute), Some(second), true) =
        (field(11..13, 23), field(14..16, 59), field(17..19, 60), colons)
    else {
        return Err(NOT.into());
    };
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        rest = &fraction[digits..];
    }
    let offset_minutes = utc_offset_minutes(rest).ok_or(NOT)?;
    let seconds = (days_from_civil(y, m, d) * 86_400 + i64::from(hour * 3600 + minute * 60 + second.min(59)))
        - offset_minutes * 60;
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    Ok(format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", of_day / 3600, of_day % 3600 / 60, of_day % 60))
}

/// An event's time as Mailchimp's events take it (`2026-11-29T12:00:00+00:00`), from an ISO 8601
/// date-time converted to UTC as `timestamp` does.
pub fn event_time(value: &Value) -> Result<String, String> {
    timestamp(value).map(|utc| format!("{}+00:00", utc.replacen(' ', "T", 1)))
}

/// Now, as an event's time.
pub fn event_time_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

/// Minutes east of UTC of an ISO 8601 offset: empty or `Z` is 0; `+02:00`, `+0200`, `+02`.
fn utc_offset_minutes(text: &str) -> Option<i64> {
    if text.is_empty() || text.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match text.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    let well_formed = digits.bytes().all(|b| b.is_ascii_digit()) && matches!(digits.len(), 2 | 4);
    if !well_formed || (text.len() == 6 && text.as_bytes()[3] != b':') {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes))
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of `days_from_civil`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// A US ZIP code: Mailchimp's `zip` merge field takes "a string representing a 5-digit ZIP code"
/// (Marketing API docs, Merge fields → Add merge data to contacts). A ZIP+4 (`12345-6789`) keeps
/// its 5-digit ZIP; a number of up to 5 digits is a ZIP whose leading zeros a spreadsheet or a
/// numeric column dropped (2134 → `02134`).
fn zip(value: &Value) -> Result<String, String> {
    const NOT: &str = "not a 5-digit US ZIP code";
    match value {
        Value::Number(n) => {
            n.as_u64().filter(|z| *z <= 99_999).map(|z| format!("{z:05}")).ok_or_else(|| NOT.into())
        }
        Value::String(s) => {
            let s = s.trim();
            let five = s.get(..5).filter(|z| z.bytes().all(|b| b.is_ascii_digit()));
            let plus_four = |rest: &str| {
                rest.is_empty()
                    || rest
                        .strip_prefix('-')
                        .is_some_and(|r| r.len() == 4 && r.bytes().all(|b| b.is_ascii_digit()))
            };
            match five {
                Some(z) if plus_four(&s[5..]) => Ok(z.to_string()),
                _ => Err(NOT.into()),
            }
        }
        _ => Err(NOT.into()),
    }
}

/// A phone number. With the field's US format (`options.phone_format` "US"), Mailchimp takes only
/// "the form of NPA-NXX-LINE (404-555-1212)" (Mailchimp API docs on phone merge fields, quoted in
/// its plugin authors' notes); 10 digits, or 11 starting with the country code 1, written with any
/// spaces, dots, dashes or parentheses, are put in that form. Otherwise any text is taken, as an
/// international number.
fn phone(options: &Value, value: &Value) -> Result<String, String> {
    let text = scalar_text(value)?;
    let us =
        options.get("phone_format").and_then(Value::as_str).is_some_and(|f| f.eq_ignore_ascii_case("US"));
    if !us {
        return Ok(truncate(text, TEXT_LIMIT));
    }
    let allowed = |c: char| c.is_ascii_digit() || " .-()+".contains(c);
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        _ => digits.as_str(),
    };
    if digits.len() != 10 || !text.trim().chars().all(allowed) {
        return Err("not a US phone number (the field's format is US: 10 digits, as 404-555-1212)".into());
    }
    Ok(format!("{}-{}-{}", &digits[..3], &digits[3..6], &digits[6..]))
}

/// A web address for `url` and `imageurl` fields, which Mailchimp validates as URLs (and an image
/// URL must also be reachable, which cannot be checked from here): http or https, with a host.
fn url(value: &Value) -> Result<String, String> {
    let text = scalar_text(value)?;
    let text = text.trim();
    let parsed = reqwest::Url::parse(text).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some_and(|h| h.contains('.') || h == "localhost")
    });
    match parsed {
        Some(_) if !text.contains(char::is_whitespace) => Ok(text.to_string()),
        _ => Err("not a web address (expected http:// or https:// and a host)".into()),
    }
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
    fn text_without_a_copy_gives_what_converting_it_gives() {
        let long = "é".repeat(300);
        for kind in ["text", "some_new_kind"] {
            assert!(is_text_kind(kind));
            for text in ["Ada", "  ", "", " padded ", long.as_str()] {
                let expected = merge_value(kind, &json!({}), &json!(text)).unwrap();
                assert_eq!(text_value(text).map(|t| json!(t)), expected, "{kind}: {text:?}");
            }
        }
        for kind in
            ["number", "date", "birthday", "address", "radio", "dropdown", "zip", "phone", "url", "imageurl"]
        {
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
    fn zip_phone_and_urls_are_checked_as_mailchimp_checks_them() {
        assert_eq!(merge("zip", json!({}), json!(" 30301 ")), Ok(Some(json!("30301"))));
        assert_eq!(merge("zip", json!({}), json!("30301-1234")), Ok(Some(json!("30301"))));
        assert_eq!(merge("zip", json!({}), json!(2134)), Ok(Some(json!("02134"))));
        for bad in
            [json!("ABCDE"), json!("1234"), json!("123456"), json!("SW1A 1AA"), json!(123456), json!(-1)]
        {
            assert!(merge("zip", json!({}), bad.clone()).is_err(), "{bad}");
        }
        let us = json!({"phone_format": "US"});
        assert_eq!(merge("phone", us.clone(), json!("(404) 555-1212")), Ok(Some(json!("404-555-1212"))));
        assert_eq!(merge("phone", us.clone(), json!("+1 404.555.1212")), Ok(Some(json!("404-555-1212"))));
        assert!(merge("phone", us.clone(), json!("+44 20 7946 0018")).is_err());
        assert!(merge("phone", us, json!("call 404 555 1212")).is_err());
        let international = json!({"phone_format": "none"});
        assert_eq!(
            merge("phone", international, json!("+44 20 7946 0018")),
            Ok(Some(json!("+44 20 7946 0018")))
        );
        assert_eq!(
            merge("url", json!({}), json!("https://ada.dev/x?y=1")),
            Ok(Some(json!("https://ada.dev/x?y=1")))
        );
        for bad in ["ada.dev", "ftp://ada.dev", "https://", "http://ada dev.com", "javascript:alert(1)"] {
            assert!(merge("imageurl", json!({}), json!(bad)).is_err(), "{bad}");
        }
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
        for (given, utc) in [
            ("2024-05-06T07:08:09+02:00", "2024-05-06 05:08:09"),
            ("2024-05-06T07:08:09.123456-0500", "2024-05-06 12:08:09"),
            ("2024-01-01T01:30:00+03", "2023-12-31 22:30:00"),
            ("2024-02-28 23:00:00-02:00", "2024-02-29 01:00:00"),
            ("2024-05-06T07:08:09", "2024-05-06 07:08:09"),
        ] {
            assert_eq!(attribute_value("timestamp_signup", &json!(given)), Ok(Some(json!(utc))), "{given}");
        }
        for bad in
            ["2024-05-06T7:08:09", "2024-05-06T07:08:09+2", "2024-05-06T25:00:00Z", "2024-05-06T07:08:09 CET"]
        {
            assert!(attribute_value("timestamp_signup", &json!(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            attribute_value("location", &json!({"latitude": "33.7", "longitude": -84.4})),
            Ok(Some(json!({"latitude": 33.7, "longitude": -84.4})))
        );
        assert!(attribute_value("location", &json!({"latitude": 95, "longitude": 0})).is_err());
        assert_eq!(attribute_value("language", &json!("pt_BR")), Ok(Some(json!("pt_BR"))));
        assert!(attribute_value("language", &json!("not a language")).is_err());
    }
}
