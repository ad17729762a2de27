//! Atomic file writes: the content goes to a temporary file beside the target, which is then renamed
//! over it, so that readers never see a half-written file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `path` through `write`: the bytes go to a temporary file in the same directory (named
/// after `path` with `.tmp` and the process id appended), which is renamed over `path` once `write`
/// has succeeded. On any error the temporary file is removed and an [`Error::Io`] naming `path` is
/// returned; an existing file at `path` is then left untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path)?;
    let outcome = write_then_rename(&tmp, path, write);
    if outcome.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    outcome.map_err(|e| Error::io(path, e))
}

/// The temporary name used for `path`.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        )
    })?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

/// Creates `tmp`, fills it with `write`, flushes it and renames it to `path`.
fn write_then_rename(
    tmp: &Path,
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(tmp)?);
    write(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::temp_dir;

    #[test]
    fn writes_and_replaces() {
        let dir = temp_dir("atomic");
        let path = dir.join("out.txt");
        write_atomic(&path, |w| w.write_all(b"first")).unwrap();
        write_atomic(&path, |w| w.write_all(b"second")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn failing_writer_leaves_nothing() {
        let dir = temp_dir("atomic-fail");
        let path = dir.join("out.txt");
        let e = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("out.txt") && msg.contains("boom"), "{msg}");
        assert!(matches!(e, Error::Io { .. }));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let path = temp_dir("atomic-missing").join("no/such/dir/out.txt");
        let e = write_atomic(&path, |w| w.write_all(b"x")).unwrap_err();
        assert!(e.to_string().contains("out.txt"));
    }
}
