#!/usr/bin/env python3
"""mcpssh driven by the official Python MCP SDK: a second, independent client.

Usage: python3 tests/python/sdk_interop.py SCENARIO [SCENARIO...]

Run by tests/e2e/python_sdk.rs, one scenario per Rust test, each against its own throwaway
sshd. The environment carries:

  MCPSSH_BIN        the mcpssh binary under test
  MCPSSH_TEST_USER  the remote user (remote processes are looked up with `pgrep -u`)
  MCP_SSH_*         the testbed's settings (host, port, key, known_hosts, cache), passed on
                    to every server this script starts

Each check prints one `ok:` line; the first failed check prints `FAIL:` with the reason and the
tail of the server's stderr, and the script exits 1. The SDK (mcp 2.x) validates every
successful tool result against the tool's outputSchema itself; the script validates again with
`jsonschema` (and also results it receives over raw JSON-RPC).

Scenarios:
  tools             initialize, server name, prefixed tools/list, ssh_execute results, timeout
  errors            bad arguments (isError naming the field), unknown tool (JSON-RPC error)
  resources_prompts resources/list and read of the session resource, prompts/list, get_prompt
  cancel            cancelling a running call (cancel scope, read timeout): the remote command
                    dies, the server keeps serving
  poll_shutdown     one poll, then silence: the server exits after threshold x interval
  never_polls       a client that never polls is not shut down
  handshake         the SDK's initialize forced to 2025-06-18 and 2025-11-25
  discover          mcp.Client(mode="auto"): server/discover and the stateless 2026-07-28 era
  raw               raw JSON-RPC lines: initialize at 2025-06-18 / 2025-11-25, server/discover
                    and per-request _meta at 2026-07-28
  stdin_eof         stdin closed during a long ssh_execute: exit 0 within 2 s, no remote
                    process left
  sigterm           the same for SIGTERM
  sdk_exit          the SDK shutting down with a call in flight (cancel, close stdin, kill at
                    2 s): the server is gone on its own before the kill, no remote process left
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from contextlib import asynccontextmanager
from typing import Any

import anyio
import jsonschema
import mcp
import mcp.client.stdio as sdk_stdio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

BIN = os.environ.get("MCPSSH_BIN", "")
TEST_USER = os.environ.get("MCPSSH_TEST_USER", "mcpssh-test")
PREFIX = "srv1_"
SERVER_NAME = "py-sdk-interop"
BUILTIN_TOOLS = [
    "ssh_connect",
    "ssh_execute",
    "ssh_disconnect",
    "scp_upload",
    "scp_download",
    "scp_listdir",
    "scp_remove",
    "scp_disk_usage",
]
INVALID_PARAMS = -32602
RESOURCE_NOT_FOUND = -32002
UNSUPPORTED_PROTOCOL_VERSION = -32022
REQUEST_TIMEOUT = -32001  # the SDK's own error for a request it stopped waiting for
CONNECTION_CLOSED = -32000  # the SDK's own error for a request to a server that went away


class CheckFailed(Exception):
    pass


def check(cond: Any, what: str, detail: Any = None) -> None:
    if not cond:
        msg = what if detail is None else f"{what}: {detail}"
        raise CheckFailed(msg)
    print(f"ok: {what}", flush=True)


# --- the servers this script starts ----------------------------------------------------------

STDERR_FILES: list[str] = []
"""Every server's stderr (a file each), printed when a check fails."""

SPAWNED: list[Any] = []
"""Every process the SDK's stdio transport spawned (anyio Process), to watch exit statuses."""

_orig_spawn = sdk_stdio._create_platform_compatible_process


async def _tracking_spawn(*args: Any, **kwargs: Any) -> Any:
    process = await _orig_spawn(*args, **kwargs)
    SPAWNED.append(process)
    return process


# The SDK offers no handle on the server process; the poll-shutdown checks need its exit.
sdk_stdio._create_platform_compatible_process = _tracking_spawn


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("MCP_SSH_")}
    env["MCP_SSH_TOOL_PREFIX"] = PREFIX
    env["MCP_SSH_SERVER_NAME"] = SERVER_NAME
    for k, v in (extra or {}).items():
        if v == "":
            env.pop(k, None)
        else:
            env[k] = v
    return env


def new_errlog(label: str):
    f = tempfile.NamedTemporaryFile(
        mode="w+", prefix=f"mcpssh-py-{label}-", suffix=".stderr", delete=False
    )
    STDERR_FILES.append(f.name)
    return f


def params(extra: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=BIN, args=[], env=server_env(extra))


@asynccontextmanager
async def sdk_session(label: str, extra: dict[str, str] | None = None, initialize: bool = True):
    """The SDK's stdio transport and a ClientSession (initialized with the SDK's default
    handshake revision unless `initialize` is false). Yields (session, process)."""
    errlog = new_errlog(label)
    before = len(SPAWNED)
    async with stdio_client(params(extra), errlog=errlog) as (read, write):
        process = SPAWNED[before]
        async with ClientSession(read, write) as session:
            if initialize:
                await session.initialize()
            yield session, process


@asynccontextmanager
async def answering_session(
    label: str, extra: dict[str, str] | None, answer: str | None, seen: list[Any]
):
    """An initialized ClientSession whose elicitation callback answers `answer` ("accept"
    or "decline"; None: the client declares no elicitation support); every elicitation it
    gets is appended to `seen`."""

    async def on_elicit(context: Any, params: Any) -> types.ElicitResult:
        seen.append(params)
        return types.ElicitResult(action=answer, content={} if answer == "accept" else None)

    errlog = new_errlog(label)
    async with stdio_client(params(extra), errlog=errlog) as (read, write):
        kwargs = {"elicitation_callback": on_elicit} if answer else {}
        async with ClientSession(read, write, **kwargs) as s:
            await s.initialize()
            yield s


@asynccontextmanager
async def sdk_client(label: str, mode: str, extra: dict[str, str] | None = None):
    """mcp.Client over the SDK's stdio transport (response cache off: polls must reach the
    server). Yields (client, process)."""
    errlog = new_errlog(label)
    before = len(SPAWNED)
    transport = stdio_client(params(extra), errlog=errlog)
    async with mcp.Client(transport, mode=mode, cache=None) as client:
        yield client, SPAWNED[before]


# --- remote processes ------------------------------------------------------------------------


def remote_processes(pattern: str) -> list[str]:
    out = subprocess.run(
        ["pgrep", "-a", "-u", TEST_USER, "-f", pattern], capture_output=True, text=True
    )
    return [line for line in out.stdout.splitlines() if line.strip()]


async def wait_present(pattern: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if remote_processes(pattern):
            return True
        await anyio.sleep(0.05)
    return False


async def wait_gone(pattern: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not remote_processes(pattern):
            return True
        if time.monotonic() > deadline:
            return False
        await anyio.sleep(0.05)


# --- result checks ---------------------------------------------------------------------------


def output_schemas(tools: list[types.Tool]) -> dict[str, dict[str, Any]]:
    return {t.name: t.output_schema for t in tools if t.output_schema is not None}


def check_result(name: str, result: types.CallToolResult, schemas: dict[str, Any]) -> dict:
    """A successful result: structuredContent present, fits the outputSchema (validated
    again here, besides the SDK's own check), the text content the same JSON."""
    check(not result.is_error, f"{name} succeeded", dump(result))
    structured = result.structured_content
    check(isinstance(structured, dict), f"{name} has structuredContent", dump(result))
    schema = schemas.get(name)
    check(schema is not None, f"{name} declares an outputSchema")
    try:
        jsonschema.validate(structured, schema)
    except jsonschema.ValidationError as e:
        raise CheckFailed(f"{name}: result does not fit its outputSchema: {e.message}: {structured}")
    print(f"ok: {name} result fits its outputSchema (jsonschema)", flush=True)
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    check(texts, f"{name} has text content", dump(result))
    check(json.loads(texts[0]) == structured, f"{name}: text content is the structuredContent JSON")
    return structured


def check_tool_error(name: str, result: types.CallToolResult, field: str) -> dict:
    check(result.is_error, f"{name} with bad `{field}` is a tool error (isError)", dump(result))
    err = result.structured_content or {}
    check(err.get("success") is False, f"{name}: error has success false", err)
    check(err.get("error_kind") == "invalid-argument", f"{name}: error_kind invalid-argument", err)
    named = err.get("field") or ""
    check(
        named == field or named.startswith(field + ".") or named.startswith(field + "["),
        f"{name}: error names field `{field}`",
        err,
    )
    check(field in (err.get("error") or ""), f"{name}: message mentions `{field}`", err)
    return err


def dump(result: Any) -> str:
    try:
        return result.model_dump_json(by_alias=True, exclude_none=True)
    except Exception:
        return repr(result)


# --- scenarios -------------------------------------------------------------------------------


async def scenario_tools() -> None:
    async with sdk_session("tools") as (session, _):
        init = session.initialize_result
        check(init is not None, "initialize answered")
        check(
            init.protocol_version in ("2025-11-25", "2025-06-18"),
            f"negotiated a handshake revision ({init.protocol_version})",
        )
        check(init.server_info.name == SERVER_NAME, "server name from MCP_SSH_SERVER_NAME", init.server_info)
        caps = init.capabilities
        check(caps.tools is not None and caps.resources is not None and caps.prompts is not None,
              "capabilities: tools, resources, prompts", caps)

        tools = (await session.list_tools()).tools
        names = [t.name for t in tools]
        check(all(n.startswith(PREFIX) for n in names), f"every tool is prefixed {PREFIX}", names)
        for builtin in BUILTIN_TOOLS:
            check(PREFIX + builtin in names, f"{PREFIX}{builtin} listed", names)
        for t in tools:
            check(t.output_schema is not None and t.input_schema.get("type") == "object",
                  f"{t.name} has inputSchema and outputSchema")
        schemas = output_schemas(tools)
        execute = PREFIX + "ssh_execute"

        result = await session.call_tool(execute, {"command": "echo hi; echo err >&2; exit 3"})
        out = check_result(execute, result, schemas)
        check(out.get("exit_code") == 3, "exit_code 3", out)
        check(out.get("stdout") == "hi\n", 'stdout "hi\\n"', out)
        check(out.get("stderr") == "err\n", 'stderr "err\\n"', out)

        pattern = "sleep 30.41"
        outcome: list[types.CallToolResult] = []

        async def run_timed_out() -> None:
            outcome.append(await session.call_tool(execute, {"command": pattern, "timeout_seconds": 1}))

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_timed_out)
            check(await wait_present(pattern, 10), f"`{pattern}` runs on the server")
        took = time.monotonic() - started
        check(took < 3.0, f"{pattern} with timeout_seconds 1 answered within 3 s ({took:.2f} s)")
        # docs/tool-contract.md: a timeout is a normal result (timed_out true, success false).
        out = check_result(execute, outcome[0], schemas)
        check(out.get("timed_out") is True, "timed_out true", out)
        check(out.get("success") is False, "success false", out)
        check(await wait_gone(pattern, 5), f"the timed-out `{pattern}` is killed on the server",
              remote_processes(pattern))

        # The SDK validates against the outputSchema (it raises RuntimeError otherwise): make
        # sure it really knows the schema it validates with.
        check(session._tool_output_schemas.get(execute) is not None,  # noqa: SLF001
              "the SDK holds ssh_execute's outputSchema for its own validation")


async def scenario_errors() -> None:
    async with sdk_session("errors") as (session, _):
        tools = (await session.list_tools()).tools
        schemas = output_schemas(tools)
        execute = PREFIX + "ssh_execute"
        cases = [
            ({}, "command"),
            ({"command": 5}, "command"),
            ({"command": "true", "timeout_seconds": "10"}, "timeout_seconds"),
            ({"command": "true", "timeout_seconds": -1}, "timeout_seconds"),
            ({"command": "true", "env": {"1BAD": "x"}}, "env"),
            ({"command": "true", "bogus": 1}, "bogus"),
        ]
        for args, field in cases:
            check_tool_error(execute, await session.call_tool(execute, args), field)

        for bad in ("no_such_tool", "ssh_execute", PREFIX + "ssh_executе"):  # unprefixed; Cyrillic е
            try:
                result = await session.call_tool(bad, {"command": "true"})
            except MCPError as e:
                check(e.code == INVALID_PARAMS, f"unknown tool {bad!r}: JSON-RPC error -32602",
                      f"{e.code} {e.message}")
                check(bad in e.message, f"unknown tool {bad!r}: the error names it", e.message)
            else:
                raise CheckFailed(f"unknown tool {bad!r} answered with a result: {dump(result)}")

        result = await session.call_tool(execute, {"command": "echo still-here"})
        out = check_result(execute, result, schemas)
        check(out.get("stdout") == "still-here\n", "still serving after the errors", out)


async def scenario_resources_prompts() -> None:
    async with sdk_session("resources") as (session, _):
        tools = (await session.list_tools()).tools
        schemas = output_schemas(tools)
        before = await session.list_resources()
        check(before.resources == [], "resources/list empty before any session", dump(before))

        connect = PREFIX + "ssh_connect"
        connected = check_result(connect, await session.call_tool(connect, {}), schemas)
        fingerprint = connected.get("host_key_fingerprint")
        check(fingerprint, "ssh_connect gives the host key fingerprint", connected)

        listed = await session.list_resources()
        check(len(listed.resources) == 1, "one session resource after connecting", dump(listed))
        resource = listed.resources[0]
        uri = str(resource.uri)
        print(f"   resource: {uri} ({resource.name}, {resource.mime_type})", flush=True)
        read = await session.read_resource(uri)
        check(len(read.contents) == 1, "resources/read gives one content", dump(read))
        content = read.contents[0]
        check(isinstance(content, types.TextResourceContents), "session resource is text", dump(read))
        session_info = json.loads(content.text)
        check(session_info.get("state") == "open", "session state open", session_info)
        check(session_info.get("host_key_fingerprint") == fingerprint,
              "resource fingerprint matches ssh_connect's", session_info)
        text = content.text
        check(str(os.environ.get("MCP_SSH_PORT")) in text and TEST_USER in text,
              "resource names the port and user", session_info)
        check("PRIVATE KEY" not in text, "no key material in the resource")

        try:
            await session.read_resource(uri + "-nope")
        except MCPError as e:
            check(e.code == RESOURCE_NOT_FOUND,
                  f"reading an unknown resource: JSON-RPC error {RESOURCE_NOT_FOUND}",
                  f"{e.code} {e.message}")
            check(uri + "-nope" in e.message, "the error names the resource", e.message)
        else:
            raise CheckFailed("reading an unknown resource succeeded")

        templates = await session.list_resource_templates()
        print(f"   resource templates: {[t.uri_template for t in templates.resource_templates]}", flush=True)

        prompts = await session.list_prompts()
        pnames = [p.name for p in prompts.prompts]
        check("diagnose_host" in pnames and "investigate_service" in pnames,
              "prompts diagnose_host and investigate_service listed", pnames)
        rendered = await session.get_prompt("investigate_service", {"service": "nginx"})
        body = json.dumps([m.model_dump(mode="json") for m in rendered.messages])
        check(rendered.messages, "investigate_service renders messages", dump(rendered))
        check("nginx" in body, "the prompt mentions the service", body)
        check(PREFIX + "ssh_execute" in body, "the prompt names the prefixed ssh_execute", body)
        diag = await session.get_prompt("diagnose_host", {})
        check(diag.messages, "diagnose_host renders", dump(diag))
        try:
            await session.get_prompt("investigate_service", {})
        except MCPError as e:
            check(e.code == INVALID_PARAMS, "get_prompt without its required argument: -32602",
                  f"{e.code} {e.message}")
        else:
            raise CheckFailed("get_prompt without its required argument succeeded")
        try:
            await session.get_prompt("no_such_prompt", {})
        except MCPError as e:
            check(e.code == INVALID_PARAMS, "an unknown prompt: JSON-RPC error -32602",
                  f"{e.code} {e.message}")
            check("no_such_prompt" in e.message, "the error names the prompt", e.message)
        else:
            raise CheckFailed("an unknown prompt rendered")


async def cancel_checks(call_tool, execute: str, schemas: dict, tag: str) -> None:
    """Cancel a running call twice (cancel scope, then the SDK's read timeout); each time the
    remote command dies and the server keeps serving. `call_tool(name, args, timeout)`."""
    # 1. The caller's cancel scope: the SDK sends notifications/cancelled for the request.
    pattern = f"sleep 33.{tag}1"
    outcome: list[Any] = []

    async def run(scope: anyio.CancelScope) -> None:
        with scope:
            outcome.append(await call_tool(execute, {"command": pattern, "timeout_seconds": 120}, None))

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run, scope)
        check(await wait_present(pattern, 15), f"`{pattern}` runs on the server")
        cancelled_at = time.monotonic()
        scope.cancel()
    check(not outcome, "the cancelled call returned nothing to the caller", outcome)
    gone = await wait_gone(pattern, 5)
    check(gone, f"cancel scope: `{pattern}` killed on the server "
          f"({time.monotonic() - cancelled_at:.2f} s)", remote_processes(pattern))

    # 2. The SDK's per-request read timeout: MCPError and, again, notifications/cancelled.
    pattern = f"sleep 33.{tag}2"
    started = time.monotonic()
    try:
        result = await call_tool(execute, {"command": pattern, "timeout_seconds": 120}, 1.5)
    except MCPError as e:
        check(e.code == REQUEST_TIMEOUT, "read timeout: the SDK's own timeout error, not the server's",
              f"{e.code} {e.message}")
        check(time.monotonic() - started < 5, f"read timeout: the SDK gave up ({e.code} {e.message})")
    else:
        raise CheckFailed(f"a 1.5 s read timeout on `{pattern}` returned: {dump(result)}")
    check(await wait_gone(pattern, 5), f"read timeout: `{pattern}` killed on the server",
          remote_processes(pattern))

    result = await call_tool(execute, {"command": "echo after-cancel"}, 20)
    out = check_result(execute, result, schemas)
    check(out.get("stdout") == "after-cancel\n", "the server keeps serving after cancellations", out)


async def scenario_cancel() -> None:
    async with sdk_session("cancel") as (session, process):
        tools = (await session.list_tools()).tools

        async def call(name, args, timeout):
            return await session.call_tool(name, args, read_timeout_seconds=timeout)

        await cancel_checks(call, PREFIX + "ssh_execute", output_schemas(tools), "1")
        check(process.returncode is None, "the server process is still running")


async def wait_exit(process: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process.returncode is None and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    return process.returncode is not None


async def scenario_poll_shutdown() -> None:
    extra = {"MCP_SSH_POLL_INTERVAL": "1", "MCP_SSH_MISSED_POLLS_THRESHOLD": "2"}
    async with sdk_session("poll", extra) as (session, process):
        await session.list_tools()
        await session.list_resources()
        polled = time.monotonic()
        print("   polled once (resources/list); now silent", flush=True)
        exited = await wait_exit(process, 10)
        after = time.monotonic() - polled
        check(exited, "the server shut itself down after the client stopped polling",
              f"still running {after:.1f} s after the poll")
        check(after >= 1.9, f"not before 2 intervals ({after:.2f} s)")
        check(after <= 5.0, f"within about threshold x interval ({after:.2f} s)")
        check(process.returncode == 0, "exit status 0", process.returncode)
        try:
            with anyio.fail_after(5):
                await session.list_tools()
        except MCPError as e:
            check(e.code == CONNECTION_CLOSED, f"the SDK sees the connection closed ({CONNECTION_CLOSED})",
                  f"{e.code} {e.message}")
        else:
            raise CheckFailed("tools/list answered after the server exited")

    # prompts/list is a poll too: polling with it every 0.5 s keeps the server up.
    async with sdk_session("poll-prompts", extra) as (session, process):
        await session.list_prompts()
        for _ in range(8):
            await anyio.sleep(0.5)
            await session.list_prompts()
        check(process.returncode is None, "regular prompts/list polls keep the server up (4 s)")
        await session.list_prompts()
        polled = time.monotonic()
        exited = await wait_exit(process, 10)
        after = time.monotonic() - polled
        check(exited and after >= 1.9, f"after the last prompts/list poll it exits ({after:.2f} s)",
              process.returncode)


async def scenario_never_polls() -> None:
    extra = {"MCP_SSH_POLL_INTERVAL": "1", "MCP_SSH_MISSED_POLLS_THRESHOLD": "1"}
    async with sdk_session("never-polls", extra) as (session, process):
        tools = (await session.list_tools()).tools
        execute = PREFIX + "ssh_execute"
        await anyio.sleep(3.5)
        check(process.returncode is None, "a client that never polls is not shut down (3.5 s)",
              process.returncode)
        out = check_result(execute, await session.call_tool(execute, {"command": "echo alive"}),
                           output_schemas(tools))
        check(out.get("stdout") == "alive\n", "and it is still served", out)

    # Threshold 0 turns the shutdown off even for a client that polled.
    extra = {"MCP_SSH_POLL_INTERVAL": "1", "MCP_SSH_MISSED_POLLS_THRESHOLD": "0"}
    async with sdk_session("poll-off", extra) as (session, process):
        await session.list_resources()
        await anyio.sleep(3)
        check(process.returncode is None, "threshold 0: no shutdown after a poll (3 s)",
              process.returncode)
        await session.list_tools()


async def forced_handshake(version: str) -> None:
    async with sdk_session(f"handshake-{version}", initialize=False) as (session, _):
        result = await session.send_request(
            types.InitializeRequest(
                params=types.InitializeRequestParams(
                    protocol_version=version,
                    capabilities=types.ClientCapabilities(),
                    client_info=types.Implementation(name="sdk-interop", version="0"),
                )
            ),
            types.InitializeResult,
        )
        check(result.protocol_version == version, f"{version}: the server accepts the revision",
              result.protocol_version)
        check(result.server_info.name == SERVER_NAME, f"{version}: server name", result.server_info)
        session.adopt(result)
        await session.send_notification(types.InitializedNotification())
        tools = (await session.list_tools()).tools
        check(len(tools) >= len(BUILTIN_TOOLS), f"{version}: tools/list", [t.name for t in tools])
        execute = PREFIX + "ssh_execute"
        out = check_result(execute, await session.call_tool(execute, {"command": "echo v; exit 2"}),
                           output_schemas(tools))
        check(out.get("stdout") == "v\n" and out.get("exit_code") == 2, f"{version}: tools/call", out)
        resources = (await session.list_resources()).resources
        check(len(resources) == 1, f"{version}: resources/list shows the one open session",
              [str(r.uri) for r in resources])
        prompts = [p.name for p in (await session.list_prompts()).prompts]
        check("diagnose_host" in prompts and "investigate_service" in prompts,
              f"{version}: prompts/list", prompts)


async def scenario_handshake() -> None:
    for version in ("2025-06-18", "2025-11-25"):
        await forced_handshake(version)


async def scenario_discover() -> None:
    async with sdk_client("discover", "auto") as (client, process):
        check(client.protocol_version == "2026-07-28",
              "mcp.Client(mode='auto') negotiated 2026-07-28 via server/discover "
              "(not the initialize fallback)", client.protocol_version)
        discover = client.session.discover_result
        check(discover is not None and "2026-07-28" in discover.supported_versions,
              "DiscoverResult lists 2026-07-28", dump(discover))
        info = client.server_info
        print(f"   serverInfo stamp: {info}", flush=True)
        caps = client.server_capabilities
        check(caps.tools is not None, "discover advertises tools", caps)

        tools = (await client.list_tools()).tools
        names = [t.name for t in tools]
        execute = PREFIX + "ssh_execute"
        check(execute in names, "tools/list at 2026-07-28", names)
        schemas = output_schemas(tools)
        out = check_result(execute, await client.call_tool(execute, {"command": "echo modern; exit 4"}),
                           schemas)
        check(out.get("stdout") == "modern\n" and out.get("exit_code") == 4, "tools/call at 2026-07-28", out)
        result = await client.call_tool(execute, {"command": "true", "timeout_seconds": "x"})
        check_tool_error(execute, result, "timeout_seconds")

        connect = PREFIX + "ssh_connect"
        check_result(connect, await client.call_tool(connect, {}), schemas)
        listed = await client.list_resources()
        check(len(listed.resources) == 1, "resources/list at 2026-07-28", dump(listed))
        read = await client.read_resource(str(listed.resources[0].uri))
        check(json.loads(read.contents[0].text).get("state") == "open", "resources/read at 2026-07-28",
              dump(read))
        prompts = await client.list_prompts()
        check(any(p.name == "diagnose_host" for p in prompts.prompts), "prompts/list at 2026-07-28")

        async def call(name, args, timeout):
            return await client.call_tool(name, args, read_timeout_seconds=timeout)

        await cancel_checks(call, execute, schemas, "2")
        check(process.returncode is None, "the server process is still running")


# --- raw JSON-RPC ----------------------------------------------------------------------------


class RawServer:
    """mcpssh spoken to in newline-delimited JSON-RPC, with no SDK in between."""

    def __init__(self, label: str, extra: dict[str, str] | None = None) -> None:
        self.errlog = new_errlog(label)
        env = dict(os.environ)
        env.update(server_env(extra))
        self.proc = subprocess.Popen(
            [BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errlog, env=env,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.notifications: list[dict] = []
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line.decode("utf-8", "replace"))
        self.lines.put(None)

    def send(self, message: dict) -> None:
        assert self.proc.stdin
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def request_start(self, method: str, params: dict | None = None) -> int:
        rid = self.next_id
        self.next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return rid

    def response(self, rid: int, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"no response to request {rid} within {timeout} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise CheckFailed(f"the server closed stdout before answering request {rid} "
                                  f"(exit status {self.proc.poll()})")
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                raise CheckFailed(f"not JSON on stdout: {line!r}")
            check_jsonrpc(msg)
            if "method" in msg:
                self.notifications.append(msg)
                continue
            if msg.get("id") == rid:
                return msg
            raise CheckFailed(f"a response to another request while waiting for {rid}: {msg}")

    def request(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.response(self.request_start(method, params), timeout)

    def result(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        msg = self.request(method, params, timeout)
        if "error" in msg:
            raise CheckFailed(f"{method} failed: {msg['error']}")
        return msg["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def check_jsonrpc(msg: Any) -> None:
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        raise CheckFailed(f"not a JSON-RPC 2.0 message: {msg}")


def raw_check_result(name: str, result: dict, schemas: dict) -> dict:
    check(result.get("isError") in (None, False), f"{name} succeeded", result)
    structured = result.get("structuredContent")
    check(isinstance(structured, dict), f"{name} has structuredContent", result)
    try:
        jsonschema.validate(structured, schemas[name])
    except jsonschema.ValidationError as e:
        raise CheckFailed(f"{name}: result does not fit its outputSchema: {e.message}: {structured}")
    print(f"ok: {name} result fits its outputSchema (jsonschema)", flush=True)
    text = [c["text"] for c in result.get("content", []) if c.get("type") == "text"]
    check(text and json.loads(text[0]) == structured, f"{name}: text is the structuredContent JSON")
    return structured


def raw_check_listings(server: RawServer, params: dict, label: str) -> None:
    """resources/list and prompts/list after a tools/call opened the session: the session's
    resource, and the two prompts."""
    resources = server.result("resources/list", params).get("resources")
    check(isinstance(resources, list) and len(resources) == 1,
          f"{label}: resources/list shows the one open session", resources)
    prompts = [p.get("name") for p in server.result("prompts/list", params).get("prompts", [])]
    check("diagnose_host" in prompts and "investigate_service" in prompts,
          f"{label}: prompts/list", prompts)


def raw_handshake(version: str) -> None:
    server = RawServer(f"raw-{version}")
    try:
        init = server.result("initialize", {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw-jsonrpc", "version": "0"},
        })
        check(init.get("protocolVersion") == version, f"raw {version}: initialize accepted", init)
        check(init.get("serverInfo", {}).get("name") == SERVER_NAME, f"raw {version}: serverInfo.name", init)
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = server.result("tools/list", {})["tools"]
        schemas = {t["name"]: t.get("outputSchema") for t in tools}
        execute = PREFIX + "ssh_execute"
        check(execute in schemas and schemas[execute], f"raw {version}: tools/list with outputSchema")
        result = server.result("tools/call", {"name": execute, "arguments": {"command": "printf raw; exit 5"}})
        out = raw_check_result(execute, result, schemas)
        check(out.get("stdout") == "raw" and out.get("exit_code") == 5, f"raw {version}: tools/call", out)
        unknown = server.request("tools/call", {"name": "nope", "arguments": {}})
        check(unknown.get("error", {}).get("code") == INVALID_PARAMS,
              f"raw {version}: unknown tool is -32602", unknown)
        raw_check_listings(server, {}, f"raw {version}")
    finally:
        server.close()


def modern_meta(version: str = "2026-07-28") -> dict:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-jsonrpc", "version": "0"},
    }


def raw_discover() -> None:
    server = RawServer("raw-2026")
    try:
        disc = server.result("server/discover", {"_meta": modern_meta()})
        print(f"   server/discover: {json.dumps(disc)[:600]}", flush=True)
        check("2026-07-28" in disc.get("supportedVersions", []), "raw: discover lists 2026-07-28", disc)
        check(disc.get("capabilities", {}).get("tools") is not None, "raw: discover advertises tools", disc)
        # No initialize, no notifications/initialized: every request carries its own context.
        tools = server.result("tools/list", {"_meta": modern_meta()})["tools"]
        schemas = {t["name"]: t.get("outputSchema") for t in tools}
        execute = PREFIX + "ssh_execute"
        check(execute in schemas and schemas[execute], "raw 2026-07-28: tools/list with outputSchema")
        result = server.result("tools/call", {
            "name": execute, "arguments": {"command": "echo stateless"}, "_meta": modern_meta(),
        })
        out = raw_check_result(execute, result, schemas)
        check(out.get("stdout") == "stateless\n", "raw 2026-07-28: tools/call", out)
        raw_check_listings(server, {"_meta": modern_meta()}, "raw 2026-07-28")
        missing = server.request("tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}})
        print(f"   tools/list without clientCapabilities: {json.dumps(missing)[:300]}", flush=True)
        error = missing.get("error", {})
        check(error.get("code") == INVALID_PARAMS and "clientCapabilities" in error.get("message", ""),
              "raw 2026-07-28: a request missing clientCapabilities is refused (-32602, naming it)", missing)
        bad = server.request("tools/list", {"_meta": modern_meta("2019-01-01")})
        print(f"   tools/list at 2019-01-01: {json.dumps(bad)[:300]}", flush=True)
        check(bad.get("error", {}).get("code") == UNSUPPORTED_PROTOCOL_VERSION,
              f"raw: a request at an unknown revision is refused ({UNSUPPORTED_PROTOCOL_VERSION})", bad)
    finally:
        server.close()


async def scenario_raw() -> None:
    for version in ("2025-06-18", "2025-11-25"):
        raw_handshake(version)
    raw_discover()


def start_long_call(server: RawServer, command: str) -> int:
    server.result("initialize", {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw-jsonrpc", "version": "0"},
    })
    server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return server.request_start("tools/call", {
        "name": PREFIX + "ssh_execute", "arguments": {"command": command, "timeout_seconds": 120},
    })


async def check_clean_exit(server: RawServer, pattern: str, what: str) -> None:
    """After `what` (stdin closed, SIGTERM): exit status 0 within 2 s (the Python SDK kills
    its server 2 s after closing stdin) and no `pattern` left on the server. Every symptom is
    collected before failing."""
    since = time.monotonic()
    try:
        status = server.proc.wait(2.0)
    except subprocess.TimeoutExpired:
        status = None
    at_2s = remote_processes(pattern)
    if status is None:
        try:
            status = server.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    took = time.monotonic() - since
    at_exit = remote_processes(pattern)
    # A moment for sshd to reap the signalled command.
    gone = await wait_gone(pattern, 1.0)
    problems = []
    if status is None:
        problems.append(f"the server still runs {took:.1f} s after {what}")
    elif took > 2.0:
        problems.append(f"the server exited only {took:.2f} s after {what} (status {status}); "
                        "the Python SDK kills it at 2 s")
    if status not in (None, 0):
        problems.append(f"exit status {status}, not 0")
    if took > 2.0 and at_2s:
        problems.append(f"`{pattern}` still ran on the server 2 s after {what}: {at_2s}")
    if not gone:
        problems.append(f"`{pattern}` outlived the server: {remote_processes(pattern)} (at exit: {at_exit})")
    if problems:
        raise CheckFailed("; ".join(problems))
    check(True, f"exit status 0, {took:.2f} s after {what}; no `{pattern}` left on the server")


async def scenario_stdin_eof() -> None:
    pattern = "sleep 37.3"
    server = RawServer("stdin-eof")
    try:
        rid = start_long_call(server, pattern)
        check(await wait_present(pattern, 15), f"`{pattern}` runs on the server")
        assert server.proc.stdin
        server.proc.stdin.close()
        await check_clean_exit(server, pattern, "stdin closed")
        try:
            reply = server.response(rid, timeout=0.5)
            print(f"   the pending call was answered before exit: {json.dumps(reply)[:300]}", flush=True)
        except CheckFailed:
            print("   the pending call got no answer (stdout closed)", flush=True)
    finally:
        server.close()


async def scenario_sigterm() -> None:
    pattern = "sleep 37.4"
    server = RawServer("sigterm")
    try:
        start_long_call(server, pattern)
        check(await wait_present(pattern, 15), f"`{pattern}` runs on the server")
        server.proc.send_signal(signal.SIGTERM)
        await check_clean_exit(server, pattern, "SIGTERM")
    finally:
        server.close()


async def scenario_sdk_exit() -> None:
    """The SDK's own way out with a call in flight: the caller's task is cancelled (the SDK
    sends notifications/cancelled), the transport closes stdin, waits 2 s, then SIGTERMs the
    process group. The server should be gone before that kill, with its command."""
    pattern = "sleep 37.5"
    async with sdk_session("sdk-exit") as (session, process):
        async with anyio.create_task_group() as tg:
            async def run() -> None:
                await session.call_tool(PREFIX + "ssh_execute", {"command": pattern, "timeout_seconds": 120})

            tg.start_soon(run)
            check(await wait_present(pattern, 15), f"`{pattern}` runs on the server")
            tg.cancel_scope.cancel()
        # Leaving the blocks: the SDK closes stdin, waits up to 2 s, then kills.
        closed_at = time.monotonic()
    took = time.monotonic() - closed_at
    check(process.returncode is not None, "the server process is gone after the SDK's shutdown")
    check(took < 2.0, f"the server exited on its own before the SDK's 2 s kill ({took:.2f} s, "
          f"status {process.returncode})")
    check(process.returncode == 0, "exit status 0", process.returncode)
    check(await wait_gone(pattern, 1.0), f"no `{pattern}` left on the server", remote_processes(pattern))


SCENARIOS = {
    "tools": scenario_tools,
    "errors": scenario_errors,
    "resources_prompts": scenario_resources_prompts,
    "cancel": scenario_cancel,
    "poll_shutdown": scenario_poll_shutdown,
    "never_polls": scenario_never_polls,
    "handshake": scenario_handshake,
    "discover": scenario_discover,
    "raw": scenario_raw,
    "stdin_eof": scenario_stdin_eof,
    "sigterm": scenario_sigterm,
    "sdk_exit": scenario_sdk_exit,
}


def check_failure(e: BaseException) -> CheckFailed | None:
    """The CheckFailed in `e`, also inside the exception groups of anyio task groups."""
    if isinstance(e, CheckFailed):
        return e
    if isinstance(e, BaseExceptionGroup):
        for inner in e.exceptions:
            if (found := check_failure(inner)) is not None:
                return found
    return None


def print_stderr_tails() -> None:
    for path in STDERR_FILES:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        tail = text[-6000:]
        print(f"--- server stderr ({path}, last {len(tail)} of {len(text)} bytes) ---", flush=True)
        print(tail, flush=True)


def run_standalone(scenario: Any, cleanup: Any = None) -> int:
    """Runs one scenario of a script beside this one: 0 when every check passed, 1 (with
    the failed check and the servers' stderr) otherwise, 2 without a usable MCPSSH_BIN.
    `cleanup` runs in every case."""
    if not BIN or not os.access(BIN, os.X_OK):
        print(f"FAIL: MCPSSH_BIN is not an executable: {BIN!r}", flush=True)
        return 2
    try:
        anyio.run(scenario)
    except BaseException as e:  # noqa: BLE001 - any escape is a failure
        leaf = check_failure(e)
        print(f"FAIL: {leaf if leaf is not None else repr(e)}", flush=True)
        if leaf is None:
            traceback.print_exc(file=sys.stdout)
        print_stderr_tails()
        return 1
    finally:
        if cleanup is not None:
            cleanup()
    return 0


def main() -> int:
    names = sys.argv[1:]
    if not names or any(n not in SCENARIOS for n in names):
        print(f"usage: {sys.argv[0]} SCENARIO...  ({', '.join(SCENARIOS)})", file=sys.stderr)
        return 2
    if not BIN or not os.access(BIN, os.X_OK):
        print(f"FAIL: MCPSSH_BIN is not an executable: {BIN!r}", flush=True)
        return 2
    import importlib.metadata

    print(f"mcp SDK {importlib.metadata.version('mcp')}, jsonschema {importlib.metadata.version('jsonschema')}",
          flush=True)
    failed = False
    for name in names:
        print(f"== {name}", flush=True)
        try:
            anyio.run(SCENARIOS[name])
        except BaseException as e:  # noqa: BLE001 - any escape is a failed scenario
            leaf = check_failure(e)
            if leaf is not None:
                print(f"FAIL: {name}: {leaf}", flush=True)
                failed = True
                continue
            print(f"FAIL: {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(file=sys.stdout)
            failed = True
    if failed:
        print_stderr_tails()
        return 1
    for path in STDERR_FILES:
        try:
            os.unlink(path)
        except OSError:
            pass
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
