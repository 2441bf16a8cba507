//! Building [`ExecRequest`]s: [`ExecRequest::new`] starts from the command and the host's
//! defaults, and one method per field sets what differs.
//!
//! ```
//! use mcpssh_sdk::bindings::mcpssh::plugin::exec::ExecRequest;
//!
//! let request = ExecRequest::new("df -Pk")
//!     .session(Some("web1".into()))
//!     .env("LC_ALL", "C")
//!     .timeout_ms(10_000);
//! assert_eq!(request.command, "df -Pk");
//! assert_eq!(request.env, [("LC_ALL".to_string(), "C".to_string())]);
//! assert_eq!(request.output_limit, None); // the host's default
//! ```

use crate::bindings::mcpssh::plugin::exec::ExecRequest;

impl ExecRequest {
    /// A request to run `command` (a command line for the remote user's shell) in the
    /// default session, with no standard input, no extra environment, in the remote user's
    /// login directory, without a pseudo-terminal, under the host's default timeout and
    /// output limit.
    pub fn new(command: impl Into<String>) -> Self {
        ExecRequest {
            session: None,
            command: command.into(),
            stdin: None,
            env: Vec::new(),
            working_directory: None,
            timeout_ms: None,
            output_limit: None,
            pty: false,
        }
    }

    /// The session to run in; `None` is the default one. Pass
    /// [`target::session`](crate::target::session)`(args.host)?` here.
    pub fn session(mut self, session: Option<String>) -> Self {
        self.session = session;
        self
    }

    /// Bytes written to the command's standard input, which is then closed.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Sets one environment variable (added to those set before).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The directory to run the command in.
    pub fn working_directory(mut self, directory: impl Into<String>) -> Self {
        self.working_directory = Some(directory.into());
        self
    }

    /// Give up after this many milliseconds (the call then fails with `timed-out`).
    pub fn timeout_ms(mut self, milliseconds: u64) -> Self {
        self.timeout_ms = Some(milliseconds);
        self
    }

    /// Keep at most this many bytes of each output stream (its head and tail).
    pub fn output_limit(mut self, bytes: u64) -> Self {
        self.output_limit = Some(bytes);
        self
    }

    /// Ask for a pseudo-terminal.
    pub fn pty(mut self, pty: bool) -> Self {
        self.pty = pty;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_leaves_every_choice_to_the_host() {
        let request = ExecRequest::new("true");
        assert_eq!(request.command, "true");
        assert_eq!(request.session, None);
        assert_eq!(request.stdin, None);
        assert!(request.env.is_empty());
        assert_eq!(request.working_directory, None);
        assert_eq!(request.timeout_ms, None);
        assert_eq!(request.output_limit, None);
        assert!(!request.pty);
    }

    #[test]
    fn each_method_sets_its_field() {
        let request = ExecRequest::new("cat")
            .session(Some("db".into()))
            .stdin("in")
            .env("A", "1")
            .env("B", "2")
            .working_directory("/srv")
            .timeout_ms(5)
            .output_limit(6)
            .pty(true);
        assert_eq!(request.session.as_deref(), Some("db"));
        assert_eq!(request.stdin.as_deref(), Some(&b"in"[..]));
        assert_eq!(
            request.env,
            [("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(request.working_directory.as_deref(), Some("/srv"));
        assert_eq!(request.timeout_ms, Some(5));
        assert_eq!(request.output_limit, Some(6));
        assert!(request.pty);
    }
}
