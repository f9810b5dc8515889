//! Reads stdin on its own thread, parses each line, and hands messages over a bounded channel
//! (backpressure: memory does not grow with the input's length).

use crate::protocol::{parse_line, Incoming};
use crate::redact::excerpt;
use std::io::{BufRead, BufReader, Read};
use tokio::sync::mpsc;

/// Messages are handed over in chunks of up to this many (one wake-up of the pipeline per chunk,
/// not per line); a chunk goes as soon as no more input is waiting, so a slow source is not held up.
pub const CHUNK: usize = 64;

/// The longest line accepted (a record far beyond anything Mailchimp can store); longer input is
/// reported instead of exhausting memory.
pub const MAX_LINE_BYTES: usize = 32 << 20;
/// After a long line, the read buffer is shrunk back to this size.
const BUFFER_BYTES: usize = 64 << 10;

/// What the reader hands to the pipeline.
#[derive(Debug)]
pub enum InputEvent {
    Message(Incoming),
    /// A line that is not an Airbyte message (or unreadable input); reading stops after it.
    Invalid {
        line: u64,
        reason: String,
        excerpt: String,
    },
}

/// What to tell the user about an invalid line (`InputEvent::Invalid`).
pub fn invalid_line(line: u64, reason: &str, excerpt: &str) -> String {
    format!("Input line {line} is not an Airbyte message: {reason}. Line {line} begins: {excerpt}.")
}

/// Starts the reader thread; `capacity` bounds the messages waiting in the channel. The channel
/// closes at end of input.
pub fn spawn_reader<R: Read + Send + 'static>(
    reader: BufReader<R>,
    capacity: usize,
) -> mpsc::Receiver<Vec<InputEvent>> {
    let (tx, rx) = mpsc::channel((capacity / CHUNK).max(1));
    std::thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || read_chunks(reader, tx))
        .expect("the stdin reader thread starts");
    rx
}

/// Reads lines into chunks of events and sends each chunk when it is full or stdin has nothing
/// more buffered; stops after an invalid line or at the end of input.
fn read_chunks<R: Read>(mut reader: BufReader<R>, tx: mpsc::Sender<Vec<InputEvent>>) {
    let mut buf = Vec::with_capacity(BUFFER_BYTES);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut line_no = 0u64;
    loop {
        if buf.capacity() > BUFFER_BYTES {
            buf = Vec::with_capacity(BUFFER_BYTES);
        }
        buf.clear();
        line_no += 1;
        let end = match read_event(&mut reader, &mut buf, line_no) {
            None => true,
            Some(event) => {
                let stop = matches!(event, InputEvent::Invalid { .. });
                if !matches!(event, InputEvent::Message(Incoming::Ignored)) {
                    chunk.push(event);
                }
                stop
            }
        };
        if end || chunk.len() >= CHUNK || (reader.buffer().is_empty() && !chunk.is_empty()) {
            if !chunk.is_empty() && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return;
            }
            chunk.reserve(CHUNK);
            if end {
                return;
            }
        }
    }
}

/// Reads and parses one line (at most `MAX_LINE_BYTES`); `None` at the end of input.
fn read_event<R: Read>(reader: &mut BufReader<R>, buf: &mut Vec<u8>, line_no: u64) -> Option<InputEvent> {
    let limit = MAX_LINE_BYTES as u64 + 1;
    let invalid =
        |reason: String, excerpt: String| Some(InputEvent::Invalid { line: line_no, reason, excerpt });
    match reader.take(limit).read_until(b'\n', buf) {
        Ok(0) => None,
        Ok(_) if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') => invalid(
            format!("it is longer than {} MiB", MAX_LINE_BYTES >> 20),
            excerpt(&String::from_utf8_lossy(&buf[..200]), 80),
        ),
        Ok(_) => {
            let line = buf.trim_ascii();
            if line.is_empty() {
                return Some(InputEvent::Message(Incoming::Ignored));
            }
            match parse_line(line) {
                Ok(message) => Some(InputEvent::Message(message)),
                Err(e) => invalid(e.0, excerpt(&String::from_utf8_lossy(&line[..line.len().min(400)]), 80)),
            }
        }
        Err(e) => invalid(format!("standard input could not be read ({e})"), String::new()),
    }
}
