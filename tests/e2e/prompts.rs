//! Prompts: listed, rendered with their arguments, and a missing argument refused.

use mcpssh_testbed::rmcp::model::GetPromptRequestParams;
use serde_json::json;

use crate::common::Harness;

#[tokio::test]
async fn prompts_are_listed_and_rendered() {
    let h = Harness::start().await;
    let prompts = h.server.peer().list_all_prompts().await.unwrap();
    let names: Vec<_> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"diagnose_host") && names.contains(&"investigate_service"),
        "{names:?}"
    );
    let mut args = serde_json::Map::new();
    args.insert("service".into(), json!("nginx"));
    let rendered = h
        .server
        .peer()
        .get_prompt(GetPromptRequestParams::new("investigate_service").with_arguments(args))
        .await
        .unwrap();
    let text = serde_json::to_string(&rendered.messages).unwrap();
    assert!(
        text.contains("nginx") && text.contains("ssh_execute"),
        "{text}"
    );
    let missing = h
        .server
        .peer()
        .get_prompt(GetPromptRequestParams::new("investigate_service"))
        .await;
    assert!(missing.is_err(), "a missing argument is an error");
}
