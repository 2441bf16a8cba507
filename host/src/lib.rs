//! `mcpssh`: an MCP server that gives an AI assistant SSH command execution and SFTP
//! file transfer, with every tool a sandboxed WebAssembly component.
//!
//! The host owns the world (SSH sessions in [`sessions`], the MCP layer in [`mcp`]);
//! tools are components run by [`plugin`] that get only the capabilities they import.

pub mod allocator;
pub mod app;
pub mod bounded;
pub mod cleanup;
pub mod config;
pub mod doctor;
pub mod embed;
pub mod error;
pub mod files;
pub mod jobs;
pub mod kept_ahead;
pub mod local;
pub mod mcp;
pub mod pattern;
pub mod plugin;
pub mod policy;
pub mod sessions;
pub mod sftp;
pub mod ssh;
pub mod ssh_config;
pub mod tool_name;
pub mod trusted_file;
