//! A record's `data` as received: its fields in order, each name and value borrowed from the input
//! line (nothing is built for a field the mapping does not use), or whatever else the source sent.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A field's value: its JSON text as received (one valid JSON value: a string, number, literal,
/// list or object), read only when the mapping uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldValue<'a>(Cow<'a, str>);

impl<'a> FieldValue<'a> {
    /// A value from JSON text that the parser has already checked.
    pub(crate) fn checked(json: impl Into<Cow<'a, str>>) -> Self {
        FieldValue(json.into())
    }

    /// The JSON text as received.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// The text of a JSON string (borrowed unless it has escapes); `None` for any other value.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        text_of(&self.0)
    }

    /// The value built as JSON; a value nested deeper than the parser's recursion limit (which no
    /// merge field or attribute could take) reads as null, which is never sent.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    pub fn is_null(&self) -> bool {
        &*self.0 == "null"
    }

    pub fn into_owned(self) -> FieldValue<'static> {
        FieldValue(Cow::Owned(self.0.into_owned()))
    }
}

/// A record's `data`.
#[derive(Debug, Clone)]
pub enum RecordData<'a> {
    /// An object: its fields in the order received. A repeated name keeps both; the last one wins.
    Fields(Vec<(Cow<'a, str>, FieldValue<'a>)>),
    /// Anything that is not an object (a record to reject).
    Other(Value),
}

impl RecordData<'_> {
    /// The object's fields, if it is one.
    pub fn fields(&self) -> Option<&[(Cow<'_, str>, FieldValue<'_>)]> {
        match self {
            RecordData::Fields(fields) => Some(fields),
            RecordData::Other(_) => None,
        }
    }

    /// A copy that no longer borrows the input line (kept while the record may still be rejected).
    pub fn into_owned(self) -> RecordData<'static> {
        match self {
            RecordData::Fields(fields) => RecordData::Fields(
                fields
                    .into_iter()
                    .map(|(name, value)| (Cow::Owned(name.into_owned()), value.into_owned()))
                    .collect(),
            ),
            RecordData::Other(value) => RecordData::Other(value),
        }
    }

    /// The data as a JSON value (a repeated name: the last one wins).
    pub fn to_value(&self) -> Value {
        match self {
            RecordData::Fields(fields) => Value::Object(
                fields.iter().map(|(name, value)| (name.to_string(), value.value())).collect::<Map<_, _>>(),
            ),
            RecordData::Other(value) => value.clone(),
        }
    }
}

impl From<Value> for RecordData<'static> {
    fn from(value: Value) -> Self {
        match value {
            Value::Object(map) => RecordData::Fields(
                map.into_iter()
                    .map(|(name, value)| (Cow::Owned(name), FieldValue(Cow::Owned(value.to_string()))))
                    .collect(),
            ),
            other => RecordData::Other(other),
        }
    }
}

impl PartialEq for RecordData<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

/// The text of a JSON string value (borrowed unless it has escapes); `None` for any other value.
pub fn text_of(json: &str) -> Option<Cow<'_, str>> {
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(json).ok().map(Cow::Owned)
}

impl<'de: 'a, 'a> Deserialize<'de> for RecordData<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DataVisitor)
    }
}

/// A field name: borrowed from the line unless it has escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = RecordData<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record's data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RecordData<'de>, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(12));
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            fields.push((name, FieldValue(Cow::Borrowed(value.get()))));
        }
        Ok(RecordData::Fields(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RecordData<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(RecordData::Other(Value::Array(items)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<RecordData<'de>, E> {
        Ok(RecordData::Other(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RecordData<'de>, E> {
        Ok(RecordData::Other(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<RecordData<'de>, E> {
        Ok(RecordData::Other(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RecordData<'de>, E> {
        Ok(RecordData::Other(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<RecordData<'de>, E> {
        Ok(RecordData::Other(Value::String(v.to_string())))
    }

    fn visit_unit<E>(self) -> Result<RecordData<'de>, E> {
        Ok(RecordData::Other(Value::Null))
    }

    fn visit_none<E>(self) -> Result<RecordData<'de>, E> {
        Ok(RecordData::Other(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names_and_values(data: &RecordData) -> Vec<(String, String)> {
        let fields = data.fields().expect("an object");
        fields.iter().map(|(name, value)| (name.to_string(), value.get().to_string())).collect()
    }

    #[test]
    fn objects_become_fields_in_order_and_the_rest_stays_a_value() {
        let text = r#"{"b": 1, "a\u0041": [true], "b": "x\"y"}"#;
        let data: RecordData = serde_json::from_str(text).unwrap();
        assert_eq!(
            names_and_values(&data),
            [("b".into(), "1".into()), ("aA".into(), "[true]".into()), ("b".into(), r#""x\"y""#.into())]
        );
        assert!(matches!(&data.fields().unwrap()[0].0, Cow::Borrowed(_)), "names are borrowed");
        assert_eq!(data.to_value(), json!({"b": "x\"y", "aA": [true]}));
        let owned = data.clone().into_owned();
        assert_eq!(names_and_values(&owned), names_and_values(&data));
        for other in [json!(null), json!(true), json!(-3), json!(2.5), json!("x"), json!([1, {"a": 2}])] {
            let text = other.to_string();
            let data: RecordData = serde_json::from_str(&text).unwrap();
            assert_eq!(data.to_value(), other);
            assert!(data.fields().is_none());
        }
    }

    #[test]
    fn values_read_as_text_null_or_json() {
        let raw = |text: &'static str| FieldValue::checked(text);
        assert_eq!(raw(r#""plain""#).text().as_deref(), Some("plain"));
        assert!(matches!(raw(r#""plain""#).text(), Some(Cow::Borrowed(_))));
        assert_eq!(raw(r#""tab\there""#).text().as_deref(), Some("tab\there"));
        assert_eq!(raw("12").text(), None);
        assert!(raw("null").is_null() && !raw(r#""null""#).is_null());
        assert_eq!(raw(r#"{"x": [1]}"#).value(), json!({"x": [1]}));
    }
}
