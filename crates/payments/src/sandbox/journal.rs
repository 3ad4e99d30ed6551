//! The sandbox's optional journal: one JSON line per executed request, synced before the
//! answer leaves, so that a process killed between the gateway call and its own commit
//! finds the gateway's memory intact when it restarts (the no-double-charge test).
//!
//! Lines hold idempotency keys, amounts, last four digits and ids: never a PAN or a
//! security code.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state::Record;

/// One journal line.
#[derive(Serialize, Deserialize)]
pub(super) struct Line {
    pub(super) key: String,
    pub(super) record: Record,
}

/// An append-only journal file.
#[derive(Debug)]
pub(super) struct Journal {
    file: File,
}

impl Journal {
    /// Opens (creating) the journal at `path` and reads every line. A torn last line (the
    /// process died mid-write, so the answer never left) is cut off.
    pub(super) fn open(path: &Path) -> io::Result<(Journal, Vec<Line>)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut lines = Vec::new();
        for text in bytes[..complete].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = serde_json::from_slice::<Line>(text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            lines.push(line);
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        if complete < bytes.len() {
            file.set_len(complete as u64)?;
        }
        Ok((Journal { file }, lines))
    }

    /// Appends a line and syncs it to disk.
    pub(super) fn append(&mut self, line: &Line) -> io::Result<()> {
        let mut text = serde_json::to_vec(line).map_err(io::Error::other)?;
        text.push(b'\n');
        self.file.write_all(&text)?;
        self.file.sync_data()
    }
}
