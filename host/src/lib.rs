//! `mcpssh`: an MCP server that gives an AI assistant SSH command execution and SFTP
//! file transfer, with every tool a sandboxed WebAssembly component.
//!
//! The host owns the world (SSH sessions in [`sessions`], the MCP transport in [`server`]);
//! tools are components run by [`plugin`] that get only the capabilities they import.

pub mod allocator;
pub mod app;
pub mod bounded;
pub mod call_slots;
pub mod cleanup;
pub mod client_log;
pub mod config;
pub mod doctor;
pub mod embed;
pub mod error;
pub mod files;
pub mod job_resources;
pub mod jobs;
pub mod local;
pub mod pattern;
pub mod plugin;
pub mod policy;
pub mod progress;
pub mod prompts;
pub mod remote_files;
pub mod server;
pub mod sessions;
pub mod sftp;
pub mod ssh;
pub mod tool_name;
pub mod watchdog;
