//! Reading a password: from a terminal without echo (the terminal's ECHO flag off while the
//! line is typed, restored however the read ends), or one line of standard input.

use std::io::{self, BufRead as _, IsTerminal as _, Write as _};

use rustix::termios::{self, LocalModes, OptionalActions};
use zeroize::Zeroizing;

/// One line of standard input (`--password-stdin`), without its line ending.
pub(crate) fn from_stdin() -> io::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    io::stdin().lock().read_line(&mut line)?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

/// Whether a password can be asked on the terminal (standard input is one).
pub(crate) fn can_prompt() -> bool {
    io::stdin().is_terminal()
}

/// Asks for a password on the terminal: `prompt` on standard error, the line typed without
/// echo.
pub(crate) fn prompt(prompt: &str) -> io::Result<Zeroizing<String>> {
    let stdin = io::stdin();
    let mut err = io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    let saved = termios::tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&stdin, OptionalActions::Flush, &quiet)?;
    let read = from_stdin();
    // Restored whatever the read gave.
    let restored = termios::tcsetattr(&stdin, OptionalActions::Now, &saved);
    let line = read?;
    restored?;
    Ok(line)
}
