//! The Python exceptions of `framepipe`, in one place, and how each Rust error maps to one.
//!
//! Every exception carries the Rust error's message with its causes (`a: b: c`), so a
//! Python user reads the same words as a CLI user.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    framepipe,
    Error,
    PyException,
    "Base class of every framepipe error."
);
create_exception!(
    framepipe,
    NoProducer,
    Error,
    "No producer publishes the stream (none appeared within `wait`)."
);
create_exception!(
    framepipe,
    ProducerGone,
    Error,
    "The producer died, hangs or stopped, and none came back within `wait`."
);
create_exception!(
    framepipe,
    Timeout,
    Error,
    "No new frame arrived within the timeout while the producer is alive."
);
create_exception!(
    framepipe,
    PermissionDenied,
    Error,
    "A stream object belongs to another user, or its mode excludes this one."
);
create_exception!(
    framepipe,
    Corrupt,
    Error,
    "The stream's shared memory holds a value no honest producer writes."
);
create_exception!(
    framepipe,
    Refused,
    Error,
    "The producer refused a command, with its reason (paused, unsupported, invalid...)."
);
create_exception!(
    framepipe,
    FrameInUse,
    Error,
    "A numpy view of the previous frame is still alive: `del` it or use `copy()`."
);

/// The error's message followed by each of its sources.
pub fn message(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A `framepipe.Error` with `text`.
pub fn error(text: impl Into<String>) -> PyErr {
    Error::new_err(text.into())
}

/// Maps a failure to attach to a stream.
pub fn open_error(e: &shm_frames::OpenError) -> PyErr {
    use shm_frames::OpenError as E;
    let text = message(e);
    match e {
        E::NoProducer { .. } | E::NotReady { .. } => NoProducer::new_err(text),
        E::ProducerGone { .. } => ProducerGone::new_err(text),
        E::PermissionDenied { .. } => PermissionDenied::new_err(text),
        E::Truncated { .. }
        | E::BadMagic { .. }
        | E::VersionMismatch { .. }
        | E::ForeignLayout { .. }
        | E::HeaderSize { .. }
        | E::SizeMismatch { .. }
        | E::BadLayout { .. }
        | E::Format(_) => Corrupt::new_err(text),
        _ => Error::new_err(text),
    }
}

/// Maps a failed frame wait that no reopen will fix.
pub fn wait_error(e: &shm_frames::WaitError) -> PyErr {
    use shm_frames::WaitError as E;
    let text = message(e);
    match e {
        E::Timeout => Timeout::new_err(text),
        E::ProducerGone | E::Stopped | E::Replaced => ProducerGone::new_err(text),
        E::Corrupt(_) => Corrupt::new_err(text),
        E::FrameInUse => FrameInUse::new_err(text),
    }
}

/// Maps a failure to create a stream's region.
pub fn create_error(e: &shm_frames::CreateError) -> PyErr {
    match e {
        shm_frames::CreateError::PermissionDenied { .. } => PermissionDenied::new_err(message(e)),
        _ => Error::new_err(message(e)),
    }
}

/// Maps a failure to create one of a stream's queues.
pub fn queue_create_error(e: &control_msg::CreateError) -> PyErr {
    Error::new_err(message(e))
}

/// Maps a failure to open a stream's command queue.
pub fn queue_open_error(e: &control_msg::OpenError) -> PyErr {
    let text = message(e);
    match e {
        control_msg::OpenError::NotFound { .. } => NoProducer::new_err(text),
        control_msg::OpenError::PermissionDenied { .. } => PermissionDenied::new_err(text),
        _ => Error::new_err(text),
    }
}

/// Registers every exception in `module`.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("Error", py.get_type::<Error>())?;
    module.add("NoProducer", py.get_type::<NoProducer>())?;
    module.add("ProducerGone", py.get_type::<ProducerGone>())?;
    module.add("Timeout", py.get_type::<Timeout>())?;
    module.add("PermissionDenied", py.get_type::<PermissionDenied>())?;
    module.add("Corrupt", py.get_type::<Corrupt>())?;
    module.add("FrameInUse", py.get_type::<FrameInUse>())?;
    module.add("Refused", py.get_type::<Refused>())?;
    Ok(())
}
