//! The local append-only spool: where events go while Redis cannot take them.
//!
//! Each record is `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`,
//! the payload one [`TenantEvent`] as JSON. Appends are fsynced before the events are
//! acknowledged. Records are replayed in order when Redis is back; once every record is
//! replayed the file is truncated to zero. A crash can leave a torn last record: opening
//! the spool drops it (and anything after a bad record) with a warning.
//!
//! A record replayed twice (a crash between the replay and the truncation) is harmless:
//! Redis still holds its idempotency marker, so it is not counted again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::store::TenantEvent;

const HEADER_BYTES: u64 = 8;
/// No single record is larger: an event's fields are all capped far below this.
const MAX_RECORD_BYTES: u32 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({max_bytes} bytes)")]
    Full { max_bytes: u64 },
    #[error(
        "the spool {0} is in use by another process (give each instance its own events.spool_path)"
    )]
    InUse(PathBuf),
    #[error("spool i/o failed")]
    Io(#[from] std::io::Error),
}

/// What opening an existing spool found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpoolRecovery {
    /// Records waiting to be replayed.
    pub records: u64,
    /// Bytes dropped from the end (a torn or corrupt record and what followed it).
    pub dropped_bytes: u64,
}

pub struct Spool {
    path: PathBuf,
    file: File,
    /// Bytes of whole records in the file.
    length: u64,
    /// Bytes of them known to be on disk.
    synced_length: u64,
    /// Records before this offset have been replayed.
    replayed_until: u64,
    max_bytes: u64,
}

impl Spool {
    /// Opens (or creates) the spool at `path`, keeping the whole records and dropping a
    /// torn tail.
    pub fn open(path: &Path, max_bytes: u64) -> Result<(Spool, SpoolRecovery), SpoolError> {
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // Two writers would interleave records and replay each other's: one process
        // owns a spool, for as long as the file is open.
        if !fs4::fs_std::FileExt::try_lock_exclusive(&file)? {
            return Err(SpoolError::InUse(path.to_owned()));
        }
        let file_length = file.metadata()?.len();
        let mut recovery = SpoolRecovery::default();
        let mut offset = 0;
        while let Some(record_end) = whole_record_end(&file, offset, file_length)? {
            recovery.records += 1;
            offset = record_end;
        }
        if offset < file_length {
            recovery.dropped_bytes = file_length - offset;
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = recovery.dropped_bytes,
                kept_records = recovery.records,
                "dropped a torn or corrupt record at the end of the event spool"
            );
            file.set_len(offset)?;
            file.sync_all()?;
        }
        Ok((
            Spool {
                path: path.to_owned(),
                file,
                length: offset,
                synced_length: offset,
                replayed_until: 0,
                max_bytes,
            },
            recovery,
        ))
    }

    /// Bytes of records not replayed yet.
    pub fn pending_bytes(&self) -> u64 {
        self.length - self.replayed_until
    }

    /// Bytes the file holds.
    pub fn file_bytes(&self) -> u64 {
        self.length
    }

    /// Returns whether records were written since the last successful [`Spool::sync`].
    pub fn has_unsynced(&self) -> bool {
        self.length != self.synced_length
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `events` and fsyncs them. Nothing is written when they would not fit.
    pub fn append(&mut self, events: &[TenantEvent]) -> Result<(), SpoolError> {
        self.write(events)?;
        self.sync()
    }

    /// Appends `events` without waiting for the disk: they are kept only once
    /// [`Spool::sync`] succeeds. Nothing is written when they would not fit.
    pub fn write(&mut self, events: &[TenantEvent]) -> Result<(), SpoolError> {
        let mut bytes = Vec::new();
        for event in events {
            let payload = serde_json::to_vec(event).map_err(std::io::Error::other)?;
            let length = u32::try_from(payload.len())
                .ok()
                .filter(|length| *length <= MAX_RECORD_BYTES)
                .ok_or_else(|| std::io::Error::other("an event is too large to spool"))?;
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        if self.length + bytes.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full {
                max_bytes: self.max_bytes,
            });
        }
        if let Err(error) = self.file.write_all_at(&bytes, self.length) {
            // Whatever part was written is not kept; cut it off again.
            let _ = self.file.set_len(self.length);
            return Err(error.into());
        }
        self.length += bytes.len() as u64;
        Ok(())
    }

    /// Fsyncs what [`Spool::write`] appended. When that fails, everything appended since
    /// the last successful sync is cut off again (none of it may be acknowledged).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.length == self.synced_length {
            return Ok(());
        }
        if let Err(error) = self.file.sync_data() {
            let _ = self.file.set_len(self.synced_length);
            self.length = self.synced_length;
            return Err(error.into());
        }
        self.synced_length = self.length;
        Ok(())
    }

    /// Reads up to `max_events` records not replayed yet. Returns them with the offset
    /// to pass to [`Spool::mark_replayed`] once they are stored.
    pub fn read_pending(&self, max_events: usize) -> Result<(Vec<TenantEvent>, u64), SpoolError> {
        let mut events = Vec::new();
        let mut offset = self.replayed_until;
        while events.len() < max_events && offset < self.length {
            let Some((payload, record_end)) = read_record(&self.file, offset, self.length)? else {
                break;
            };
            match serde_json::from_slice::<TenantEvent>(&payload) {
                Ok(event) => events.push(event),
                Err(error) => tracing::error!(
                    offset,
                    error = %error,
                    "skipped an unreadable record of the event spool"
                ),
            }
            offset = record_end;
        }
        Ok((events, offset))
    }

    /// Records everything before `offset` as replayed; truncates the file once all is.
    pub fn mark_replayed(&mut self, offset: u64) -> Result<(), SpoolError> {
        self.replayed_until = offset.min(self.length);
        if self.replayed_until == self.length && self.length > 0 {
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.length = 0;
            self.synced_length = 0;
            self.replayed_until = 0;
        }
        Ok(())
    }
}

/// Returns the end of the whole, intact record at `offset`, if there is one.
fn whole_record_end(file: &File, offset: u64, file_length: u64) -> std::io::Result<Option<u64>> {
    Ok(read_record(file, offset, file_length)?.map(|(_, end)| end))
}

fn read_record(
    file: &File,
    offset: u64,
    file_length: u64,
) -> std::io::Result<Option<(Vec<u8>, u64)>> {
    if offset + HEADER_BYTES > file_length {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_BYTES as usize];
    file.read_exact_at(&mut header, offset)?;
    let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let checksum = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let record_end = offset + HEADER_BYTES + u64::from(length);
    if length > MAX_RECORD_BYTES || record_end > file_length {
        return Ok(None);
    }
    let mut payload = vec![0u8; length as usize];
    file.read_exact_at(&mut payload, offset + HEADER_BYTES)?;
    if crc32fast::hash(&payload) != checksum {
        return Ok(None);
    }
    Ok(Some((payload, record_end)))
}

/// Appends raw bytes to a file, for tests that tear a spool on purpose.
pub fn append_raw_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().append(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::store::numbered_event as event;

    #[test]
    fn records_come_back_in_order_after_a_reopen() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("events.spool");
        let (mut spool, _) = Spool::open(&path, 1 << 20).unwrap();
        spool.append(&[event(1), event(2)]).unwrap();
        spool.append(&[event(3)]).unwrap();
        drop(spool);

        let (spool, recovery) = Spool::open(&path, 1 << 20).unwrap();
        let (events, _) = spool.read_pending(10).unwrap();

        assert_eq!(recovery.records, 3);
        assert_eq!(events, vec![event(1), event(2), event(3)]);
    }

    #[test]
    fn writes_synced_together_come_back_in_order() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("events.spool");
        let (mut spool, _) = Spool::open(&path, 1 << 20).unwrap();
        spool.write(&[event(1)]).unwrap();
        spool.write(&[event(2), event(3)]).unwrap();
        spool.sync().unwrap();
        drop(spool);

        let (spool, recovery) = Spool::open(&path, 1 << 20).unwrap();
        let (events, _) = spool.read_pending(10).unwrap();

        assert_eq!(recovery.records, 3);
        assert_eq!(events, vec![event(1), event(2), event(3)]);
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_the_rest_kept() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("events.spool");
        let (mut spool, _) = Spool::open(&path, 1 << 20).unwrap();
        spool.append(&[event(1), event(2)]).unwrap();
        let whole_length = spool.file_bytes();
        drop(spool);
        // A record header announcing 100 bytes, and only 3 of them.
        append_raw_bytes(&path, &[100, 0, 0, 0, 1, 2, 3, 4, b'{', b'"', b't']).unwrap();

        let (spool, recovery) = Spool::open(&path, 1 << 20).unwrap();

        assert_eq!(recovery.records, 2);
        assert_eq!(recovery.dropped_bytes, 11);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole_length);
        assert_eq!(spool.read_pending(10).unwrap().0.len(), 2);
    }

    #[test]
    fn a_record_with_a_wrong_checksum_is_not_replayed() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("events.spool");
        let (mut spool, _) = Spool::open(&path, 1 << 20).unwrap();
        spool.append(&[event(1)]).unwrap();
        drop(spool);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();

        let (spool, recovery) = Spool::open(&path, 1 << 20).unwrap();

        assert_eq!(recovery.records, 0);
        assert!(spool.read_pending(10).unwrap().0.is_empty());
    }

    #[test]
    fn a_spool_in_use_cannot_be_opened_a_second_time() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("events.spool");
        let (first, _) = Spool::open(&path, 1 << 20).unwrap();

        let second = Spool::open(&path, 1 << 20);

        assert!(
            matches!(second, Err(SpoolError::InUse(_))),
            "{:?}",
            second.err()
        );
        drop(first);
        assert!(Spool::open(&path, 1 << 20).is_ok());
    }

    #[test]
    fn a_full_spool_refuses_and_replaying_everything_empties_it() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("events.spool");
        let (mut spool, _) = Spool::open(&path, 400).unwrap();
        spool.append(&[event(1), event(2)]).unwrap();
        let refused = spool.append(&[event(3), event(4), event(5)]);
        assert!(
            matches!(refused, Err(SpoolError::Full { .. })),
            "{refused:?}"
        );

        let (events, offset) = spool.read_pending(10).unwrap();
        spool.mark_replayed(offset).unwrap();

        assert_eq!(events.len(), 2);
        assert_eq!(spool.pending_bytes(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
