//! The agent's own diagnostics: one line per message on stderr (in the VM
//! that is `/dev/console`), prefixed with `podvm-agent:`.

use std::io::Write;

/// Writes one prefixed line to stderr; `say!("...", args)`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Writes `podvm-agent: <args>` to stderr, ignoring errors (there is nowhere
/// else to report them).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "podvm-agent: {args}");
}
