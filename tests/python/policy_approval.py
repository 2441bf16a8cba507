#!/usr/bin/env python3
"""Approval through MCP elicitation, with the official Python MCP SDK as the client.

Usage: python3 tests/python/policy_approval.py

Run by tests/e2e/python_sdk.rs with the same environment as sdk_interop.py (whose helpers
it uses). A policy asks before `touch` runs:

  - a client that answers the elicitation with accept: the command runs (the file exists);
  - one that declines: the call is refused (`denied`) and the file never appears;
  - a client without elicitation: refused, naming elicitation, the file never appears;
  - the same with `when_no_elicitation = "allow"`: it runs without asking.

The elicitation is form mode with no fields (accept or decline; no secret is asked for)
and its message shows the command.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdk_interop as sdk  # noqa: E402
from sdk_interop import PREFIX, check, dump, types  # noqa: E402

SCRATCH = tempfile.mkdtemp(prefix="mcpssh-approval-")
os.chmod(SCRATCH, 0o777)  # the remote user writes here
POLICIES: list[str] = []


def policy(extra: str = "") -> str:
    fd, path = tempfile.mkstemp(prefix="mcpssh-policy-", suffix=".toml")
    with os.fdopen(fd, "w") as f:
        f.write('preset = "standard"\n' + extra + '[commands]\nask = ["touch *"]\n')
    POLICIES.append(path)
    return path


def session(label: str, policy_path: str, answer: str | None, seen: list[Any]):
    """A session under `policy_path` whose client answers elicitations with `answer`."""
    return sdk.answering_session(label, {"MCP_SSH_POLICY": policy_path}, answer, seen)


async def touch(s: Any, name: str) -> tuple[types.CallToolResult, str]:
    path = os.path.join(SCRATCH, name)
    result = await s.call_tool(f"{PREFIX}ssh_execute", {"command": f"touch {path}"})
    return result, path


async def scenario() -> None:
    path_policy = policy()
    seen: list[Any] = []
    async with session("accept", path_policy, "accept", seen) as s:
        result, path = await touch(s, "accepted")
        check(not result.is_error, "accepted: the command ran", dump(result))
        check(os.path.exists(path), "accepted: the remote file exists")
        check(len(seen) == 1, "accepted: the user was asked once", seen)
        params = seen[0]
        check(getattr(params, "mode", "form") == "form", "the request is form mode", params)
        check(f"touch {path}" in params.message, "the message shows the command", params.message)
        check(path_policy in params.message, "the message names the policy file", params.message)
        schema = params.requested_schema
        props = schema.get("properties") if isinstance(schema, dict) else schema.properties
        check(not props, "no field is asked for (never a secret)", schema)
        # A command no rule asks about runs without asking.
        result = await s.call_tool(f"{PREFIX}ssh_execute", {"command": "true"})
        check(not result.is_error and len(seen) == 1, "an ordinary command is not asked about", seen)

    seen = []
    async with session("decline", path_policy, "decline", seen) as s:
        result, path = await touch(s, "declined")
        check(result.is_error, "declined: the call is an error", dump(result))
        err = result.structured_content or {}
        check(err.get("error_kind") == "denied", "declined: error_kind denied", err)
        check("declined" in err.get("error", ""), "declined: the message says so", err)
        check(len(seen) == 1, "declined: the user was asked", seen)
        check(not os.path.exists(path), "declined: the command never ran")

    seen = []
    async with session("no-elicitation", path_policy, None, seen) as s:
        result, path = await touch(s, "unasked")
        err = result.structured_content or {}
        check(result.is_error and err.get("error_kind") == "denied", "no elicitation: refused", dump(result))
        check("elicitation" in err.get("error", ""), "no elicitation: the message names it", err)
        check("when_no_elicitation" in err.get("error", ""), "no elicitation: the message names the fix", err)
        check(not os.path.exists(path), "no elicitation: the command never ran")

    allow_policy = policy('when_no_elicitation = "allow"\n')
    async with session("no-elicitation-allowed", allow_policy, None, []) as s:
        result, path = await touch(s, "allowed")
        check(not result.is_error, "when_no_elicitation = allow: it runs", dump(result))
        check(os.path.exists(path), "when_no_elicitation = allow: the file exists")


def cleanup() -> None:
    shutil.rmtree(SCRATCH, ignore_errors=True)
    for path in POLICIES:
        os.unlink(path)


def main() -> int:
    return sdk.run_standalone(scenario, cleanup)


if __name__ == "__main__":
    sys.exit(main())
