//! The one error type of the library: every failure says what went wrong and, where it can, what to do.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The model file is malformed: truncated, wrong magic, offsets out of range.
    Gguf(String),
    /// A Hugging Face model folder is malformed: bad JSON, shards that do not add up.
    Folder(String),
    /// The file is well formed but describes something hearth cannot run.
    Unsupported(String),
    Tokenizer(String),
    Template(String),
    Gpu(String),
    /// Bad input from the user: a prompt too long for the context, bad option values.
    Input(String),
    Pull(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Gguf(m) => write!(f, "invalid GGUF file: {m}"),
            Error::Folder(m) => write!(f, "invalid model folder: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported model: {m}"),
            Error::Tokenizer(m) => write!(f, "tokenizer: {m}"),
            Error::Template(m) => write!(f, "chat template: {m}"),
            Error::Gpu(m) => write!(f, "GPU: {m}"),
            Error::Input(m) => write!(f, "{m}"),
            Error::Pull(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
