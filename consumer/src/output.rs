//! Output files that never leave a partial file claiming success: written to a temporary
//! file in the same directory and renamed over the target only when complete (removed
//! otherwise). `-` is standard output; an existing device or FIFO is written in place.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Buffer size of file outputs (frames are large; fewer, larger writes).
const BUFFER: usize = 1 << 20;

/// Where the bytes end up when the output is committed.
#[derive(Debug)]
enum Target {
    /// Renamed from `temp` to `path` on commit.
    Atomic { temp: PathBuf },
    /// Written in place: standard output, a device, a FIFO.
    InPlace,
}

/// An output being written. Implements [`Write`]; call [`OutputFile::commit`] once it is
/// complete, or drop it to discard it.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    target: Target,
    out: BufWriter<File>,
    committed: bool,
}

impl OutputFile {
    /// Creates the output for `path`; `-` means standard output.
    pub fn create(path: &Path) -> Result<OutputFile, Error> {
        let error = |source| Error::Output {
            path: path.to_owned(),
            source,
        };
        if path == Path::new("-") {
            let fd = io::stdout().as_fd().try_clone_to_owned().map_err(error)?;
            return Ok(OutputFile::new(path, Target::InPlace, File::from(fd)));
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(error(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a directory",
                )));
            }
            Ok(meta) if !meta.is_file() => {
                // A device or a FIFO: never replace it, write into it.
                let file = OpenOptions::new().write(true).open(path).map_err(error)?;
                return Ok(OutputFile::new(path, Target::InPlace, file));
            }
            _ => {}
        }
        let temp = temp_path(path).ok_or_else(|| {
            error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(error)?;
        Ok(OutputFile::new(path, Target::Atomic { temp }, file))
    }

    fn new(path: &Path, target: Target, file: File) -> OutputFile {
        OutputFile {
            path: path.to_owned(),
            target,
            out: BufWriter::with_capacity(BUFFER, file),
            committed: false,
        }
    }

    /// The path it was created for (`-` for standard output).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is standard output.
    pub fn is_stdout(&self) -> bool {
        self.path == Path::new("-")
    }

    /// Flushes the output and moves it to its path.
    pub fn commit(mut self) -> Result<(), Error> {
        let error = |source| Error::Output {
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(error)?;
        if let Target::Atomic { temp } = &self.target {
            std::fs::rename(temp, &self.path).map_err(error)?;
        }
        self.committed = true;
        Ok(())
    }

    /// An I/O error of this output, named.
    pub fn error(&self, source: io::Error) -> Error {
        Error::Output {
            path: self.path.clone(),
            source,
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let (false, Target::Atomic { temp }) = (self.committed, &self.target) {
            if let Err(error) = std::fs::remove_file(temp) {
                tracing::warn!(path = %temp.display(), %error, "cannot remove a partial output");
            } else {
                tracing::debug!(path = %self.path.display(), "discarded an unfinished output");
            }
        }
    }
}

/// `dir/.name.<pid>.part` beside `dir/name`.
fn temp_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".{}.part", std::process::id()));
    Some(path.with_file_name(temp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("consumer-output-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn commit_renames_and_drop_discards() {
        let dir = scratch_dir("commit");
        let path = dir.join("out.bin");
        let mut out = OutputFile::create(&path).unwrap();
        out.write_all(b"hello").unwrap();
        assert!(!path.exists(), "the target appears only on commit");
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");

        let other = dir.join("other.bin");
        let mut out = OutputFile::create(&other).unwrap();
        out.write_all(b"partial").unwrap();
        drop(out);
        assert!(!other.exists());
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "only out.bin is left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_paths_are_clear_errors() {
        let missing = Path::new("/nonexistent-framepipe-dir/out.y4m");
        let error = OutputFile::create(missing).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/nonexistent-framepipe-dir/out.y4m")
        );
        let dir = scratch_dir("isdir");
        assert!(OutputFile::create(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_are_written_in_place() {
        let mut out = OutputFile::create(Path::new("/dev/null")).unwrap();
        out.write_all(b"x").unwrap();
        out.commit().unwrap();
        assert!(Path::new("/dev/null").exists());
    }
}
