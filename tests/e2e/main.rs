//! End-to-end tests: the real `mcpssh` binary, driven over stdio by rmcp's MCP client,
//! against a real OpenSSH sshd on 127.0.0.1 (see `tests/testbed`). Every test has its own
//! sshd and its own server, so they run in parallel.
//!
//! The contract under test is docs/tool-contract.md.

mod client_setup;
mod common;

mod arguments;
mod authentication;
mod context_budget;
mod contract_versions;
mod custom_tools;
mod doctor;
mod example_tool;
mod execute;
mod file_tools;
mod generated_components;
mod host_keys;
mod hostile_remote;
mod jobs;
mod limits;
mod log_messages;
mod login_shells;
mod max_sessions;
mod outside_calls;
mod packages;
mod policy;
mod prompts;
mod python_sdk;
mod ready_channel;
mod reconnect;
mod resources;
mod robustness;
mod sandbox_limits;
mod scope;
mod sessions;
mod shutdown;
mod ssh_config;
mod startup;
mod tools_list;
mod trust;
mod unreachable_hosts;
mod untrusted_model;
