//! Standard output for a reader that may go away. `serin get | head -1` and a `status --watch`
//! piped into a pager that quits close the pipe early, and Rust's `print!` panics on that
//! ("failed printing to stdout: Broken pipe"). Every command writes through here instead: a
//! closed pipe ends the process quietly with exit code 141, as a Unix filter killed by SIGPIPE
//! does (so `set -o pipefail` still sees that the output was not all read, and `serin check`
//! never reports success it did not deliver); any other write error ends it with exit code 2
//! and the reason.

use std::fmt::Display;
use std::io::{ErrorKind, Write};

/// 128 + SIGPIPE: the status a shell reports for a filter that died of a closed pipe.
pub const SIGPIPE_EXIT: i32 = 141;

/// Writes `text` as it is, flushed so a watching reader sees each frame at once.
pub fn print(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let written = write!(out, "{text}").and_then(|()| out.flush());
    if let Err(error) = written {
        if error.kind() == ErrorKind::BrokenPipe {
            std::process::exit(SIGPIPE_EXIT);
        }
        // stderr may be gone too; there is nobody left to tell then.
        let _ = writeln!(
            std::io::stderr(),
            "error: writing to standard output: {error}"
        );
        std::process::exit(2);
    }
}

/// Writes `text` and a newline.
pub fn println(text: impl Display) {
    print(format_args!("{text}\n"));
}

/// `print!` through [`print`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::stdout::print(format_args!($($arg)*)) };
}

/// `println!` through [`println`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::stdout::println(format_args!($($arg)*)) };
}
