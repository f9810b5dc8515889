//! Reads stdin on its own thread and hands over its lines in chunks over a bounded channel
//! (backpressure: memory does not grow with the input's length); the pipeline parses each line
//! where it is, so that a record's fields are read without being copied.

use crate::protocol::{parse_line, Incoming};
use crate::redact::excerpt;
use std::io::{BufRead, BufReader, Read};
use tokio::sync::mpsc;

/// Lines are handed over in chunks of up to this many (one wake-up of the pipeline per chunk,
/// not per line); a chunk goes as soon as no more input is waiting, so a slow source is not held up.
pub const CHUNK: usize = 256;

/// The longest line accepted (a record far beyond anything Mailchimp can store); longer input is
/// reported instead of exhausting memory.
pub const MAX_LINE_BYTES: usize = 32 << 20;
/// A chunk's text buffer starts at this size.
const CHUNK_BYTES: usize = 96 << 10;

/// Consecutive input lines, as read.
#[derive(Debug, Default)]
pub struct Lines {
    text: Vec<u8>,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
    /// The input line number of the first line.
    first: u64,
}

impl Lines {
    /// The messages of the chunk's lines in order (blank lines are skipped), or what is wrong with
    /// a line that is not one.
    pub fn messages(&self) -> impl Iterator<Item = Result<Incoming<'_>, InvalidLine>> + '_ {
        self.iter().filter_map(|(line_no, line)| parse(line_no, line))
    }

    /// Each line with its input line number.
    fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .enumerate()
            .map(|(i, (start, end))| (self.first + i as u64, &self.text[start..*end]))
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// A line that is not an Airbyte message (or unreadable input); reading stops after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    pub line: u64,
    pub reason: String,
    pub excerpt: String,
}

impl InvalidLine {
    /// What to tell the user.
    pub fn message(&self) -> String {
        let InvalidLine { line, reason, excerpt } = self;
        format!("Input line {line} is not an Airbyte message: {reason}. Line {line} begins: {excerpt}.")
    }
}

/// What the reader hands to the pipeline.
#[derive(Debug)]
pub enum InputEvent {
    Lines(Lines),
    /// Input that could not be read (a line too long, or a read error); reading stops.
    Invalid(InvalidLine),
}

/// Parses one line of a chunk: `None` for a blank line.
fn parse(line_no: u64, line: &[u8]) -> Option<Result<Incoming<'_>, InvalidLine>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    Some(parse_line(line).map_err(|e| InvalidLine {
        line: line_no,
        reason: e.0,
        excerpt: excerpt(&String::from_utf8_lossy(&line[..line.len().min(400)]), 80),
    }))
}

/// Starts the reader thread; `capacity` bounds the lines waiting in the channel. The channel
/// closes at end of input.
pub fn spawn_reader<R: Read + Send + 'static>(
    reader: BufReader<R>,
    capacity: usize,
) -> mpsc::Receiver<InputEvent> {
    let (tx, rx) = mpsc::channel((capacity / CHUNK).max(1));
    std::thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || read_chunks(reader, tx))
        .expect("the stdin reader thread starts");
    rx
}

/// Reads lines into chunks and sends each chunk when it is full or stdin has nothing more
/// buffered; stops after unreadable input or at the end of input.
fn read_chunks<R: Read>(mut reader: BufReader<R>, tx: mpsc::Sender<InputEvent>) {
    let mut chunk =
        Lines { text: Vec::with_capacity(CHUNK_BYTES), ends: Vec::with_capacity(CHUNK), first: 1 };
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        let read = read_line(&mut reader, &mut chunk.text, line_no);
        let end = !matches!(read, Ok(true));
        match &read {
            Ok(true) => chunk.ends.push(chunk.text.len()),
            Ok(false) => {}
            Err(_) => chunk.text.truncate(chunk.ends.last().copied().unwrap_or(0)),
        }
        let waiting = reader.buffer().is_empty() && !chunk.is_empty();
        if end || chunk.len() >= CHUNK || waiting {
            let next = Lines {
                text: Vec::with_capacity(CHUNK_BYTES),
                ends: Vec::with_capacity(CHUNK),
                first: line_no + 1,
            };
            let full = std::mem::replace(&mut chunk, next);
            if !full.is_empty() && tx.blocking_send(InputEvent::Lines(full)).is_err() {
                return;
            }
        }
        if let Err(invalid) = read {
            let _ = tx.blocking_send(InputEvent::Invalid(invalid));
        }
        if end {
            return;
        }
    }
}

/// Appends one line (at most `MAX_LINE_BYTES`) to `text`: `Ok(false)` at the end of input.
fn read_line<R: Read>(
    reader: &mut BufReader<R>,
    text: &mut Vec<u8>,
    line_no: u64,
) -> Result<bool, InvalidLine> {
    let start = text.len();
    let limit = MAX_LINE_BYTES as u64 + 1;
    match reader.take(limit).read_until(b'\n', text) {
        Ok(0) => Ok(false),
        Ok(_) if text.len() - start > MAX_LINE_BYTES && text.last() != Some(&b'\n') => Err(InvalidLine {
            line: line_no,
            reason: format!("it is longer than {} MiB", MAX_LINE_BYTES >> 20),
            excerpt: excerpt(&String::from_utf8_lossy(&text[start..start + 200]), 80),
        }),
        Ok(_) => Ok(true),
        Err(e) => Err(InvalidLine {
            line: line_no,
            reason: format!("standard input could not be read ({e})"),
            excerpt: String::new(),
        }),
    }
}
