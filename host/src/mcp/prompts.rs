//! The prompts the server offers: ready-made investigations a user can start with one
//! click. Each renders into a single user message that tells the model which tools to use.

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};

/// The prompts, as listed to clients.
pub fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "diagnose_host",
            Some("Check a host's health: load, memory, disks, failed services, recent errors"),
            None,
        ),
        Prompt::new(
            "investigate_service",
            Some("Find out why a service is failing: status, recent logs, config, ports"),
            Some(vec![{
                let mut a = PromptArgument::new("service");
                a.description = Some("The systemd unit or process name, e.g. nginx".into());
                a.required = Some(true);
                a
            }]),
        ),
    ]
}

/// Renders prompt `name` with `arguments`; an unknown name or a missing argument is an error
/// message for the client.
pub fn render(
    prefix: &str,
    name: &str,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> Result<GetPromptResult, String> {
    let exec = format!("{prefix}ssh_execute");
    let text = match name {
        "diagnose_host" => format!(
            "Diagnose the health of the connected host using the {exec} tool (read-only commands only). \
             Check, one command at a time: uptime and load (`uptime`), memory (`free -m`), disk space \
             (`df -hP`) and inodes (`df -iP`), failed services (`systemctl --failed --no-pager` if systemd \
             is present), the last errors in the journal (`journalctl -p err -n 50 --no-pager`) or \
             /var/log/syslog, and the top processes by CPU and memory (`ps aux --sort=-%cpu | head`). \
             Then summarise: what is healthy, what is wrong, and what you recommend, most urgent first."
        ),
        "investigate_service" => {
            let service = arguments
                .get("service")
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
                .ok_or("the `service` argument is required")?;
            format!(
                "Investigate why the service `{service}` is failing on the connected host, using the {exec} \
                 tool. Look at its status (`systemctl status {service} --no-pager`), its recent logs \
                 (`journalctl -u {service} -n 100 --no-pager`), whether its process runs and which ports it \
                 listens on (`ss -ltnp`), and its configuration files and their syntax check if the program \
                 has one. Do not restart or change anything without asking. Report the cause you find, the \
                 evidence, and the fix you propose."
            )
        }
        other => return Err(format!("unknown prompt: {other}")),
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        text,
    )]))
}
