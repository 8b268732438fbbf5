//! Output files that never leave a partial file claiming success: written to a temporary
//! file in the same directory (`tempfile`) and renamed over the target only when complete
//! (removed otherwise, also on a panic's unwind). `-` is standard output; an existing device
//! or FIFO is written in place.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::error::Error;

/// Buffer size of file outputs (frames are large; fewer, larger writes).
const BUFFER: usize = 1 << 20;

/// Where the bytes end up when the output is committed.
#[derive(Debug)]
enum Target {
    /// A temporary file beside `path`, renamed over it on commit and removed when dropped
    /// before that.
    Atomic(TempPath),
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
        let name = path.file_name().ok_or_else(|| {
            error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".part")
            // What a plain create gives (0666 less the umask), not tempfile's private 0600.
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(error)?;
        let (file, temp) = temp.into_parts();
        Ok(OutputFile::new(path, Target::Atomic(temp), file))
    }

    fn new(path: &Path, target: Target, file: File) -> OutputFile {
        OutputFile {
            path: path.to_owned(),
            target,
            out: BufWriter::with_capacity(BUFFER, file),
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
    pub fn commit(self) -> Result<(), Error> {
        let OutputFile {
            path,
            target,
            mut out,
        } = self;
        let error = |source| Error::Output {
            path: path.clone(),
            source,
        };
        out.flush().map_err(error)?;
        if let Target::Atomic(temp) = target {
            // On failure the error hands the temporary path back, and dropping it removes it.
            temp.persist(&path).map_err(|e| error(e.error))?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_renames_and_drop_discards() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
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
        let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert_eq!(left.len(), 1, "only out.bin is left: {left:?}");
    }

    #[test]
    fn a_committed_file_has_the_mode_of_a_plain_create() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("out.bin");
        OutputFile::create(&path).unwrap().commit().unwrap();
        // Read, not set: setting the umask would race the other tests' files.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|line| line.strip_prefix("Umask:"))
            .map(|octal| u32::from_str_radix(octal.trim(), 8).unwrap())
            .expect("a Umask line");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask, "{mode:o}");
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
        let dir = tempfile::tempdir().unwrap();
        assert!(OutputFile::create(dir.path()).is_err());
    }

    #[test]
    fn devices_are_written_in_place() {
        let mut out = OutputFile::create(Path::new("/dev/null")).unwrap();
        out.write_all(b"x").unwrap();
        out.commit().unwrap();
        assert!(Path::new("/dev/null").exists());
    }
}
