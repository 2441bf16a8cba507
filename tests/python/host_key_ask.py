#!/usr/bin/env python3
"""Asking before trusting a new host key (MCP_SSH_STRICT_HOST_KEY_CHECKING=ask), with the
official Python MCP SDK as the client that asks the user.

Usage: python3 tests/python/host_key_ask.py

Run by tests/e2e/host_keys.rs with the same environment as sdk_interop.py (whose helpers it
uses), plus MCPSSH_HOST_FINGERPRINT (the daemon's host key fingerprint). Each session
starts with an empty known_hosts file of its own:

  - a client that accepts: the user is asked once, shown the host and the fingerprint; the
    command runs, the key is recorded, and the next connection asks nothing;
  - one that declines: the call fails as a host-key error saying so, nothing is recorded;
  - with a known_hosts file that keeps nothing (/dev/null), one question is enough.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdk_interop as sdk  # noqa: E402
from sdk_interop import PREFIX, check, dump  # noqa: E402

FINGERPRINT = os.environ.get("MCPSSH_HOST_FINGERPRINT", "")
PORT = os.environ.get("MCP_SSH_PORT", "")
KNOWN_HOSTS: list[str] = []


def empty_known_hosts() -> str:
    fd, path = tempfile.mkstemp(prefix="mcpssh-known-hosts-")
    os.close(fd)
    KNOWN_HOSTS.append(path)
    return path


def asking(known_hosts: str) -> dict[str, str]:
    return {"MCP_SSH_STRICT_HOST_KEY_CHECKING": "ask", "MCP_SSH_KNOWN_HOSTS": known_hosts}


async def scenario() -> None:
    check(FINGERPRINT.startswith("SHA256:"), "the daemon's fingerprint is given", FINGERPRINT)

    known = empty_known_hosts()
    seen: list[Any] = []
    async with sdk.answering_session("accept", asking(known), "accept", seen) as s:
        result = await s.call_tool(f"{PREFIX}ssh_execute", {"command": "echo trusted"})
        check(not result.is_error, "accepted: the command ran", dump(result))
        check((result.structured_content or {}).get("stdout") == "trusted\n", "accepted: its output", dump(result))
        check(len(seen) == 1, "accepted: the user was asked once", seen)
        message = seen[0].message
        check(FINGERPRINT in message, "the question shows the key's fingerprint", message)
        check(f"[127.0.0.1]:{PORT}" in message, "the question names the host and port", message)
        schema = seen[0].requested_schema
        props = schema.get("properties") if isinstance(schema, dict) else schema.properties
        check(not props, "no field is asked for (never a secret)", schema)
        with open(known) as f:
            recorded = f.read()
        check(f"[127.0.0.1]:{PORT}" in recorded, "accepted: the key is recorded", recorded)
        connect = await s.call_tool(f"{PREFIX}ssh_connect", {})
        check(not connect.is_error, "accepted: the session is open", dump(connect))

    seen = []
    async with sdk.answering_session("known", asking(known), "decline", seen) as s:
        result = await s.call_tool(f"{PREFIX}ssh_execute", {"command": "true"})
        check(not result.is_error, "a recorded key: the command runs", dump(result))
        check(not seen, "a recorded key: nobody is asked", seen)

    known = empty_known_hosts()
    seen = []
    async with sdk.answering_session("decline", asking(known), "decline", seen) as s:
        result = await s.call_tool(f"{PREFIX}ssh_execute", {"command": "true"})
        err = result.structured_content or {}
        check(result.is_error and err.get("error_kind") == "host-key", "declined: a host-key error", dump(result))
        check("declined" in err.get("error", ""), "declined: the message says so", err)
        check(len(seen) == 1, "declined: the user was asked", seen)
        with open(known) as f:
            check(f.read() == "", "declined: nothing is recorded")


    # A known_hosts file that keeps nothing (/dev/null): accepted once, the key is trusted
    # for the rest of that connect, not asked about again and again.
    seen = []
    async with sdk.answering_session("devnull", asking("/dev/null"), "accept", seen) as s:
        result = await s.call_tool(f"{PREFIX}ssh_execute", {"command": "echo kept-nowhere"})
        check(not result.is_error, "/dev/null: the command ran", dump(result))
        check(len(seen) == 1, "/dev/null: the user was asked once", seen)


def cleanup() -> None:
    for path in KNOWN_HOSTS:
        os.unlink(path)


def main() -> int:
    return sdk.run_standalone(scenario, cleanup)


if __name__ == "__main__":
    sys.exit(main())
