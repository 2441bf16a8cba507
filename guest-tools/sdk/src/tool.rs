//! The [`Tool`] trait, its descriptor, and the glue the [`export_tools!`](crate::export_tools)
//! macro uses.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::args::{arguments_object, parse_value};
use crate::bindings::exports::mcpssh::plugin::tool::Descriptor;
use crate::error::{ToolError, kind};
use crate::schema::{find_refs, input_schema, output_schema};

/// One MCP tool.
///
/// A fresh component instance serves every call, so a tool keeps no state between calls: `run`
/// is an associated function. See the [crate documentation](crate) for a complete example.
pub trait Tool {
    /// The arguments, deserialized from the call's JSON object.
    ///
    /// Use `#[serde(deny_unknown_fields)]` so that a misspelt argument is an error (and the
    /// schema says `"additionalProperties": false`), `Option<T>` or `#[serde(default)]` for
    /// optional arguments, and doc comments on the fields: they become the schema's
    /// descriptions, which is what the model reads. Use [`NoArgs`] for a tool without arguments.
    type Args: DeserializeOwned + JsonSchema;

    /// The success result, serialized as the call's structured content. It must serialize to
    /// a JSON object; by convention it has `"success": true` (or `false` for a result that is
    /// not an error but did not succeed, like a command's non-zero exit).
    type Output: Serialize + JsonSchema;

    /// The tool's name, description and annotations.
    fn descriptor() -> ToolInfo;

    /// Runs the tool with arguments already parsed into [`Self::Args`](Tool::Args).
    fn run(args: Self::Args) -> Result<Self::Output, ToolError>;

    /// Rewrites the arguments object before it is deserialized into [`Self::Args`](Tool::Args).
    /// `arguments` is always a JSON object. The default returns it unchanged.
    ///
    /// Use it to accept an alternative, unadvertised form of the arguments (the schema still
    /// describes `Args` only), as the file transfer tools accept the Python server's
    /// `{"params": {...}}` form.
    fn normalize_arguments(arguments: serde_json::Value) -> serde_json::Value {
        arguments
    }
}

/// Behaviour hints for the client (MCP tool annotations).
///
/// [`Default`] gives MCP's defaults, which assume the worst: not read-only, destructive, not
/// idempotent, open-world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    /// The tool changes nothing (MCP `readOnlyHint`).
    pub read_only: bool,
    /// The tool may destroy or overwrite data (MCP `destructiveHint`); meaningful only when not
    /// read-only.
    pub destructive: bool,
    /// Calling it again with the same arguments has no further effect (MCP `idempotentHint`).
    pub idempotent: bool,
    /// The tool reaches systems beyond the host, such as a remote machine (MCP
    /// `openWorldHint`).
    pub open_world: bool,
}

impl Default for Annotations {
    fn default() -> Self {
        Annotations {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
        }
    }
}

/// The description of a tool: everything in its MCP listing except the schemas, which come
/// from [`Tool::Args`] and [`Tool::Output`].
///
/// ```
/// use mcpssh_sdk::ToolInfo;
///
/// let info = ToolInfo::new("ssh_disconnect", "Close the open SSH session.")
///     .title("Disconnect")
///     .destructive(false)
///     .idempotent(true);
/// assert_eq!(info.name, "ssh_disconnect");
/// assert!(!info.annotations.read_only);
/// assert!(info.annotations.open_world);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolInfo {
    /// The tool's name: 1 to 128 characters of `A-Za-z0-9_.-`. The host adds its configured
    /// prefix.
    pub name: String,
    /// A short human-readable title.
    pub title: Option<String>,
    /// What the tool does, written for the model: what it needs, what it returns, its defaults,
    /// and how to read a failure.
    pub description: String,
    /// Behaviour hints.
    pub annotations: Annotations,
}

impl ToolInfo {
    /// A tool with the given name and description, no title and [default](Annotations::default)
    /// annotations.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        ToolInfo {
            name: name.into(),
            title: None,
            description: description.into(),
            annotations: Annotations::default(),
        }
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets all annotations at once.
    pub fn annotations(mut self, annotations: Annotations) -> Self {
        self.annotations = annotations;
        self
    }

    /// Sets [`Annotations::read_only`]; a read-only tool is also marked not destructive.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.annotations.read_only = read_only;
        if read_only {
            self.annotations.destructive = false;
        }
        self
    }

    /// Sets [`Annotations::destructive`].
    pub fn destructive(mut self, destructive: bool) -> Self {
        self.annotations.destructive = destructive;
        self
    }

    /// Sets [`Annotations::idempotent`].
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.annotations.idempotent = idempotent;
        self
    }

    /// Sets [`Annotations::open_world`].
    pub fn open_world(mut self, open_world: bool) -> Self {
        self.annotations.open_world = open_world;
        self
    }
}

/// This tool takes no arguments.
///
/// The [`Tool::Args`] of a tool without arguments: it accepts `{}` (or no arguments at all)
/// and rejects any field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// The WIT descriptor of tool `T`, as returned by the component's `describe`.
pub fn descriptor<T: Tool>() -> Descriptor {
    let info = T::descriptor();
    Descriptor {
        name: info.name,
        title: info.title,
        description: info.description,
        input_schema: input_schema::<T::Args>().to_string(),
        output_schema: Some(output_schema::<T::Output>().to_string()),
        read_only: info.annotations.read_only,
        destructive: info.annotations.destructive,
        idempotent: info.annotations.idempotent,
        open_world: info.annotations.open_world,
    }
}

/// Runs tool `T` on JSON `arguments` exactly as the component's `call` does: `Ok` is the
/// result's JSON, `Err` the error's JSON (see [`ToolError`]).
///
/// Useful in unit tests of argument checking (which runs natively; host imports do not).
pub fn call_tool<T: Tool>(arguments: &str) -> Result<String, String> {
    let value = arguments_object(arguments).map_err(|e| e.to_json())?;
    let args = parse_value::<T::Args>(T::normalize_arguments(value)).map_err(|e| e.to_json())?;
    let output = T::run(args).map_err(|e| e.to_json())?;
    serde_json::to_string(&output).map_err(|e| {
        ToolError::new(
            kind::OTHER,
            format!("The tool's result could not be serialized: {e}"),
        )
        .to_json()
    })
}

/// The error JSON for a call naming a tool this component does not provide.
pub fn unknown_tool(name: &str) -> String {
    ToolError::new(
        kind::INVALID,
        format!("This component provides no tool named `{name}`."),
    )
    .to_json()
}

/// True when `name` is a valid tool name: 1 to 128 characters of `A-Za-z0-9_.-`.
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks what the host will check (and a little more) about tool `T`: a valid name, a
/// non-empty description, object schemas for arguments and result without `$ref`s. Returns
/// every problem found. Call it from a unit test of each tool:
///
/// ```
/// # use mcpssh_sdk::{NoArgs, Tool, ToolError, ToolInfo, JsonSchema};
/// # #[derive(serde::Serialize, JsonSchema)] struct Out { success: bool }
/// # struct Noop;
/// # impl Tool for Noop {
/// #     type Args = NoArgs; type Output = Out;
/// #     fn descriptor() -> ToolInfo { ToolInfo::new("noop", "Does nothing.") }
/// #     fn run(_: NoArgs) -> Result<Out, ToolError> { Ok(Out { success: true }) }
/// # }
/// mcpssh_sdk::check_tool::<Noop>().unwrap();
/// ```
pub fn check_tool<T: Tool>() -> Result<(), String> {
    let info = T::descriptor();
    let mut problems = Vec::new();
    if !is_valid_tool_name(&info.name) {
        problems.push(format!(
            "name {:?} is not 1 to 128 characters of A-Za-z0-9_.-",
            info.name
        ));
    }
    if info.description.trim().is_empty() {
        problems.push("the description is empty".to_owned());
    }
    if info.annotations.read_only && info.annotations.destructive {
        problems.push("a read-only tool cannot be destructive".to_owned());
    }
    for (what, schema) in [
        ("input", input_schema::<T::Args>()),
        ("output", output_schema::<T::Output>()),
    ] {
        if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
            problems.push(format!(
                "the {what} schema is not of type \"object\": {schema}"
            ));
        }
        let mut refs = Vec::new();
        find_refs(&schema, "", &mut refs);
        if !refs.is_empty() {
            problems.push(format!(
                "the {what} schema has $refs at {}",
                refs.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("tool {:?}: {}", info.name, problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct EchoArgs {
        /// What to echo.
        text: String,
        #[serde(default)]
        fail: bool,
    }

    #[derive(Serialize, JsonSchema)]
    struct EchoOutput {
        success: bool,
        text: String,
    }

    struct Echo;

    impl Tool for Echo {
        type Args = EchoArgs;
        type Output = EchoOutput;

        fn descriptor() -> ToolInfo {
            ToolInfo::new("echo", "Echoes `text`.")
                .title("Echo")
                .read_only(true)
        }

        fn run(args: EchoArgs) -> Result<EchoOutput, ToolError> {
            if args.fail {
                return Err(ToolError::new(kind::OTHER, "asked to fail"));
            }
            crate::validate::non_empty("text", &args.text)?;
            Ok(EchoOutput {
                success: true,
                text: args.text,
            })
        }
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn call_ok() {
        let out = call_tool::<Echo>(r#"{"text":"hi"}"#).unwrap();
        assert_eq!(parse(&out), json!({"success": true, "text": "hi"}));
    }

    #[test]
    fn call_parse_error() {
        let err = call_tool::<Echo>(r#"{"txt":"hi"}"#).unwrap_err();
        let err = parse(&err);
        assert_eq!(err["success"], false);
        assert_eq!(err["error_kind"], "invalid-argument");
        assert_eq!(err["field"], "txt");
    }

    #[test]
    fn call_validation_and_run_errors() {
        let err = parse(&call_tool::<Echo>(r#"{"text":""}"#).unwrap_err());
        assert_eq!(
            err,
            json!({"success": false, "error_kind": "invalid-argument",
                   "error": "`text` must not be empty", "field": "text"})
        );
        let err = parse(&call_tool::<Echo>(r#"{"text":"x","fail":true}"#).unwrap_err());
        assert_eq!(
            err,
            json!({"success": false, "error_kind": "other", "error": "asked to fail"})
        );
    }

    #[test]
    fn descriptor_of_echo() {
        let d = descriptor::<Echo>();
        assert_eq!(d.name, "echo");
        assert_eq!(d.title.as_deref(), Some("Echo"));
        assert!(d.read_only && !d.destructive && !d.idempotent && d.open_world);
        let input = parse(&d.input_schema);
        assert_eq!(input["type"], "object");
        assert_eq!(input["required"], json!(["text"]));
        let output = parse(d.output_schema.as_deref().unwrap());
        assert_eq!(output["required"], json!(["success", "text"]));
        check_tool::<Echo>().unwrap();
    }

    #[test]
    fn unknown_tool_error() {
        let err = parse(&unknown_tool("nope"));
        assert_eq!(err["error_kind"], "invalid");
        assert!(err.get("field").is_none());
    }

    #[test]
    fn tool_names() {
        assert!(is_valid_tool_name("ssh_execute"));
        assert!(is_valid_tool_name("a.b-c_D9"));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name("has space"));
        assert!(!is_valid_tool_name(&"x".repeat(129)));
    }

    #[test]
    fn annotation_defaults_are_mcp_defaults() {
        let a = Annotations::default();
        assert!(!a.read_only && a.destructive && !a.idempotent && a.open_world);
    }
}
