//! The index directory as a series of generations, so a rebuild happens beside the
//! serving index and a crash at any moment leaves a usable one.
//!
//! Layout of `index.path`:
//!
//! ```text
//! CURRENT              the number of the serving generation (replaced atomically)
//! generations/<n>/     one complete tantivy index each
//! ```
//!
//! A rebuild fills `generations/<n+1>/`, commits it, and only then replaces `CURRENT`
//! (write a temporary file, fsync, rename, fsync the directory). Whatever a killed
//! process leaves behind (a half-built generation, a temporary pointer, an old
//! generation not yet removed) is not named by `CURRENT` and is removed at the next open.
//! An index of the layout before generations (`meta.json` directly in `index.path`) is
//! generation 0, served where it is until the first rebuild moves the content into
//! `generations/1/`.

use std::io::Write;
use std::path::{Path, PathBuf};

const POINTER_FILE: &str = "CURRENT";
const POINTER_TEMPORARY_FILE: &str = "CURRENT.tmp";
const GENERATIONS_DIRECTORY: &str = "generations";
/// The number of an index of the layout before generations.
const LEGACY_GENERATION: u64 = 0;

/// One generation: its number and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub number: u64,
    pub path: PathBuf,
}

/// The generations under one index directory.
#[derive(Debug, Clone)]
pub struct IndexLayout {
    root: PathBuf,
}

impl IndexLayout {
    pub fn new(root: &Path) -> IndexLayout {
        IndexLayout {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the generation `CURRENT` names, the legacy index when there is no pointer
    /// but an index in the root, or `None` for a new directory.
    pub fn current(&self) -> std::io::Result<Option<Generation>> {
        match std::fs::read_to_string(self.root.join(POINTER_FILE)) {
            Ok(text) => {
                let number = text.trim().parse::<u64>().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{POINTER_FILE} does not hold a generation number: {text:?}"),
                    )
                })?;
                Ok(Some(self.generation(number)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if self.root.join("meta.json").exists() {
                    Ok(Some(self.generation(LEGACY_GENERATION)))
                } else {
                    Ok(None)
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Returns generation `number` (whether or not it exists).
    pub fn generation(&self, number: u64) -> Generation {
        let path = if number == LEGACY_GENERATION {
            self.root.clone()
        } else {
            self.root
                .join(GENERATIONS_DIRECTORY)
                .join(number.to_string())
        };
        Generation { number, path }
    }

    /// Removes what a killed process left behind: generation directories `CURRENT` does
    /// not name and a temporary pointer. Returns the removed paths.
    pub fn remove_leftovers(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let temporary_pointer = self.root.join(POINTER_TEMPORARY_FILE);
        if temporary_pointer.exists() {
            std::fs::remove_file(&temporary_pointer)?;
            removed.push(temporary_pointer);
        }
        let current_number = self.current()?.map(|generation| generation.number);
        for number in self.numbered_generations()? {
            if Some(number) == current_number {
                continue;
            }
            let leftover = self.generation(number);
            std::fs::remove_dir_all(&leftover.path)?;
            removed.push(leftover.path);
        }
        if current_number.is_some_and(|number| number != LEGACY_GENERATION) {
            // A crash between switching away from a legacy index and removing it.
            removed.extend(self.remove_legacy_files()?);
        }
        Ok(removed)
    }

    /// Creates the directory of a new generation, numbered after every existing one.
    pub fn create_next(&self) -> std::io::Result<Generation> {
        let highest = self.numbered_generations()?.into_iter().max();
        let generation = self.generation(highest.unwrap_or(LEGACY_GENERATION) + 1);
        std::fs::create_dir_all(&generation.path)?;
        Ok(generation)
    }

    /// Makes `generation` the current one, atomically and durably: a crash leaves either
    /// the old pointer or the new one.
    pub fn switch_to(&self, generation: &Generation) -> std::io::Result<()> {
        let temporary_pointer = self.root.join(POINTER_TEMPORARY_FILE);
        {
            let mut file = std::fs::File::create(&temporary_pointer)?;
            writeln!(file, "{}", generation.number)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary_pointer, self.root.join(POINTER_FILE))?;
        std::fs::File::open(&self.root)?.sync_all()
    }

    /// Removes a generation that is no longer current.
    pub fn remove(&self, generation: &Generation) -> std::io::Result<()> {
        if generation.number == LEGACY_GENERATION {
            self.remove_legacy_files().map(|_| ())
        } else {
            std::fs::remove_dir_all(&generation.path)
        }
    }

    /// Moves an unreadable generation aside (kept for inspection, never served again)
    /// and returns where it went.
    pub fn set_aside(&self, generation: &Generation) -> std::io::Result<PathBuf> {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        if generation.number == LEGACY_GENERATION {
            let aside = self.root.join(format!("legacy.corrupt-{stamp}"));
            std::fs::create_dir_all(&aside)?;
            for path in self.legacy_files()? {
                std::fs::rename(&path, aside.join(path.file_name().expect("a file name")))?;
            }
            return Ok(aside);
        }
        let aside = self
            .root
            .join(GENERATIONS_DIRECTORY)
            .join(format!("{}.corrupt-{stamp}", generation.number));
        std::fs::rename(&generation.path, &aside)?;
        Ok(aside)
    }

    fn numbered_generations(&self) -> std::io::Result<Vec<u64>> {
        let directory = self.root.join(GENERATIONS_DIRECTORY);
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut numbers = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            if let Some(number) = name.to_str().and_then(|name| name.parse::<u64>().ok()) {
                numbers.push(number);
            }
        }
        Ok(numbers)
    }

    /// The files of a legacy index in the root: everything but the layout's own entries
    /// and set-aside directories.
    fn legacy_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_layout = name == POINTER_FILE
                || name == POINTER_TEMPORARY_FILE
                || name == GENERATIONS_DIRECTORY
                || name.contains(".corrupt-");
            if !is_layout && entry.file_type()?.is_file() {
                files.push(entry.path());
            }
        }
        Ok(files)
    }

    fn remove_legacy_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let files = self.legacy_files()?;
        for file in &files {
            std::fs::remove_file(file)?;
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_has_no_generation_until_one_is_switched_to() {
        // Arrange
        let directory = tempfile::tempdir().unwrap();
        let layout = IndexLayout::new(directory.path());

        // Act
        let before = layout.current().unwrap();
        let first = layout.create_next().unwrap();
        layout.switch_to(&first).unwrap();

        // Assert
        assert_eq!(before, None);
        assert_eq!(first.number, 1);
        assert_eq!(layout.current().unwrap(), Some(first));
    }

    #[test]
    fn leftovers_of_a_crash_are_removed_and_the_current_generation_kept() {
        // Arrange: generation 2 is current; 1 was not removed, 3 was half built.
        let directory = tempfile::tempdir().unwrap();
        let layout = IndexLayout::new(directory.path());
        let old = layout.create_next().unwrap();
        let current = layout.create_next().unwrap();
        layout.switch_to(&current).unwrap();
        let half_built = layout.create_next().unwrap();
        std::fs::write(directory.path().join(POINTER_TEMPORARY_FILE), "3").unwrap();

        // Act
        let removed = layout.remove_leftovers().unwrap();

        // Assert
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(!old.path.exists());
        assert!(!half_built.path.exists());
        assert!(current.path.exists());
        assert_eq!(layout.current().unwrap(), Some(current));
    }

    #[test]
    fn a_legacy_index_is_generation_zero_and_its_files_go_after_the_switch() {
        // Arrange
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("meta.json"), "{}").unwrap();
        let layout = IndexLayout::new(directory.path());

        // Act
        let legacy = layout.current().unwrap().unwrap();
        let next = layout.create_next().unwrap();
        layout.switch_to(&next).unwrap();
        layout.remove_leftovers().unwrap();

        // Assert
        assert_eq!(legacy.number, 0);
        assert_eq!(legacy.path, directory.path());
        assert_eq!(next.number, 1);
        assert!(!directory.path().join("meta.json").exists());
    }
}
