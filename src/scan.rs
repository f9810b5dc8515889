//! The fast path for a RECORD line: one pass over its bytes reads the envelope and the data's
//! fields and checks that the rest is JSON. A line it does not fully understand (an escape, another
//! message type, a duplicate key, anything malformed) is left to serde_json, the reference reader.

use crate::fields::{FieldValue, RecordData};
use crate::protocol::{Incoming, Record, StreamName};
use std::borrow::Cow;

/// Nesting deeper than this inside a record is left to the reference reader.
const MAX_DEPTH: usize = 100;

/// The record a line holds, when it is a RECORD message this fast path reads in full; `None`
/// means "read it with serde_json" (which also gives the error for a malformed line).
pub fn record(text: &str) -> Option<Incoming<'_>> {
    let mut scan = Scanner { text, bytes: text.as_bytes(), at: 0 };
    let record = scan.envelope()?;
    scan.skip_space();
    (scan.at == scan.bytes.len()).then_some(Incoming::Record(record))
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not taken.
    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.at).copied()
    }

    /// Takes `byte` after whitespace.
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// After an object's or a list's item: `true` for a comma (another item), `false` at `close`.
    fn more(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            b if b == close => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A string without escapes: its text. `None` at an escape, a control character or the end.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        // Eight bytes at a time while none of them is a quote, a backslash or a control character.
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        while let Some(chunk) = self.bytes.get(self.at..self.at + 8) {
            let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            let special = zero_in(v ^ (ONES * b'"' as u64))
                | zero_in(v ^ (ONES * b'\\' as u64))
                | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
            if special != 0 {
                break;
            }
            self.at += 8;
        }
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(&self.text[start..self.at - 1]);
                }
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }

    /// One JSON value, taken whole: its text.
    fn value(&mut self, depth: usize) -> Option<&'a str> {
        let first = self.peek()?;
        let start = self.at;
        match first {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' if depth >= MAX_DEPTH => return None,
            b'{' => self.object(|scan, _| scan.value(depth + 1).map(drop))?,
            b'[' => self.array(|scan| scan.value(depth + 1).map(drop))?,
            b't' => self.word(b"true")?,
            b'f' => self.word(b"false")?,
            b'n' => self.word(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        Some(&self.text[start..self.at])
    }

    /// An object, each entry's value read by `entry` (given the key, after the colon).
    fn object(&mut self, mut entry: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            entry(self, key)?;
            if !self.more(b'}')? {
                return Some(());
            }
        }
    }

    /// A list, each item read by `item`.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            if !self.more(b']')? {
                return Some(());
            }
        }
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number as JSON writes it: `-`? (`0` | digits) (`.` digits)? (`e` sign? digits)?
    fn number(&mut self) -> Option<()> {
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        match self.bytes.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            (self.digits() > 0).then_some(())?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        Some(())
    }

    /// The message: `type` must be `RECORD`, `record` is read, anything else is skipped.
    fn envelope(&mut self) -> Option<Record<'a>> {
        let (mut kind, mut record, mut state) = (false, None, false);
        self.object(|scan, key| match key {
            "type" if !kind => {
                kind = true;
                (scan.string()? == "RECORD").then_some(())
            }
            "record" if record.is_none() => {
                record = Some(scan.record()?);
                Some(())
            }
            // The reference reader refuses a repeated `type`, `record` or `state`.
            "type" | "record" => None,
            "state" if std::mem::replace(&mut state, true) => None,
            _ => scan.value(0).map(drop),
        })?;
        record.filter(|_| kind)
    }

    /// The record's stream, namespace and data (an object).
    fn record(&mut self) -> Option<Record<'a>> {
        let (mut stream, mut namespace, mut data) = (None, None, None);
        self.object(|scan, key| match key {
            "stream" if stream.is_none() => {
                stream = Some(scan.string()?);
                Some(())
            }
            "namespace" if namespace.is_none() => {
                namespace = Some(match scan.peek()? {
                    b'n' => scan.word(b"null").map(|()| None)?,
                    _ => Some(scan.string()?),
                });
                Some(())
            }
            "data" if data.is_none() => {
                data = Some(scan.fields()?);
                Some(())
            }
            "stream" | "namespace" | "data" => None,
            _ => scan.value(0).map(drop),
        })?;
        Some(Record {
            stream: StreamName {
                namespace: namespace.flatten().map(Cow::Borrowed),
                name: Cow::Borrowed(stream?),
            },
            data: RecordData::Fields(data?),
        })
    }

    /// The data object's fields in order, each value as its JSON text.
    #[allow(clippy::type_complexity)]
    fn fields(&mut self) -> Option<Vec<(Cow<'a, str>, FieldValue<'a>)>> {
        let mut fields = Vec::with_capacity(12);
        self.object(|scan, name| {
            let value = scan.value(1)?;
            fields.push((Cow::Borrowed(name), FieldValue::checked(value)));
            Some(())
        })?;
        Some(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plain_record_and_leaves_the_rest_to_the_reference() {
        let line = r#" {"type" : "RECORD","record":{"namespace":null,"stream":"users","data":{"email":"a@b.io","n":-1.5e3,"x":[1,{"y":null}],"email":true},"emitted_at":1},"state":{"a":1}} "#;
        let Some(Incoming::Record(read)) = record(line.trim()) else { panic!("read") };
        assert_eq!(read.stream.to_key().to_string(), "users");
        let fields: Vec<(&str, &str)> =
            read.data.fields().unwrap().iter().map(|(n, v)| (&**n, v.get())).collect();
        assert_eq!(
            fields,
            [("email", r#""a@b.io""#), ("n", "-1.5e3"), ("x", r#"[1,{"y":null}]"#), ("email", "true")]
        );
        for other in [
            r#"{"type":"STATE","state":{}}"#,
            r#"{"type":"RECORD","record":{"stream":"u","data":{"e":"a\"b"}}}"#,
            r#"{"type":"RECORD","type":"RECORD","record":{"stream":"u","data":{}}}"#,
            r#"{"type":"RECORD","record":{"stream":"u","data":{"n":01}}}"#,
            r#"{"type":"RECORD","record":{"stream":"u","data":{"n":1.}}}"#,
            r#"{"type":"RECORD","record":{"stream":"u","data":{}}} x"#,
            r#"{"type":"RECORD","record":{"stream":"u","data":[1]}}"#,
            r#"{"type":"RECORD","record":{"data":{}}}"#,
            r#"{"type":"RECORD","record":{"stream":"u","data":{"a":[1,]}}}"#,
            r#"{"type":"RECORD","record":{"stream":"u","data":{"a":tru}}}"#,
        ] {
            assert!(record(other).is_none(), "{other}");
        }
    }
}
