//! A record's `data` as received: its fields in order, read straight into a list (no map is built
//! for a record that is read once), or whatever else the source sent instead of an object.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use std::fmt;

/// A record's `data`.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordData {
    /// An object: its fields in the order received. A repeated name keeps both; the last one wins.
    Fields(Vec<(String, Value)>),
    /// Anything that is not an object (a record to reject).
    Other(Value),
}

impl RecordData {
    /// The object's fields, if it is one.
    pub fn fields(&self) -> Option<&[(String, Value)]> {
        match self {
            RecordData::Fields(fields) => Some(fields),
            RecordData::Other(_) => None,
        }
    }
}

impl RecordData {
    /// Reads data whose JSON nests deeper than the parser's recursion limit: an object's fields are
    /// taken one by one and each is built as a value on its own; a field that is still too deep (a
    /// value no merge field or attribute could take) becomes null, which is never sent.
    pub fn from_raw(raw: &RawValue) -> RecordData {
        let text = raw.get();
        if !text.starts_with('{') {
            return RecordData::Other(serde_json::from_str(text).unwrap_or(Value::Null));
        }
        let fields: Vec<(String, &RawValue)> =
            serde_json::from_str::<RawFields>(text).map(|f| f.0).unwrap_or_default();
        let fields = fields
            .into_iter()
            .map(|(name, value)| (name, serde_json::from_str(value.get()).unwrap_or(Value::Null)))
            .collect();
        RecordData::Fields(fields)
    }
}

/// An object's fields in order, each value as raw JSON (scanned without building it).
struct RawFields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawFields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for FieldsVisitor<'a> {
            type Value = RawFields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFields<'a>, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(RawFields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor(std::marker::PhantomData))
    }
}

impl From<Value> for RecordData {
    fn from(value: Value) -> Self {
        match value {
            Value::Object(map) => RecordData::Fields(map.into_iter().collect()),
            other => RecordData::Other(other),
        }
    }
}

impl<'de> Deserialize<'de> for RecordData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = RecordData;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record's data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RecordData, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(12));
        while let Some(entry) = map.next_entry::<String, Value>()? {
            fields.push(entry);
        }
        Ok(RecordData::Fields(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RecordData, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(RecordData::Other(Value::Array(items)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::Null))
    }

    fn visit_none<E>(self) -> Result<RecordData, E> {
        Ok(RecordData::Other(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_become_fields_in_order_and_the_rest_stays_a_value() {
        let data: RecordData = serde_json::from_str(r#"{"b": 1, "a": [true], "b": 2}"#).unwrap();
        assert_eq!(
            data,
            RecordData::Fields(vec![
                ("b".into(), json!(1)),
                ("a".into(), json!([true])),
                ("b".into(), json!(2))
            ])
        );
        for other in [json!(null), json!(true), json!(-3), json!(2.5), json!("x"), json!([1, {"a": 2}])] {
            let data: RecordData = serde_json::from_value(other.clone()).unwrap();
            assert_eq!(data, RecordData::Other(other.clone()));
            assert_eq!(data, RecordData::from(other));
        }
    }
}
