//! How the binary reports a failure: the error chain on one line, and an
//! exit code that tells bad input (2) from everything else (1). Every verb
//! module uses these; none of them uses another verb module.

/// A failure the user caused with the input they gave: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadInput(pub(crate) String);

/// The error chain on one line: `context: cause: root cause`.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

/// 2 when the user's input was at fault, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<BadInput>()) {
        2
    } else {
        1
    }
}
