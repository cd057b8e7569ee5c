"""A real MCP client (the official Python SDK, `pip install mcp`) acting as an AI tutor.

Usage:
  tutor_client.py http URL TOKEN IN_SCOPE OUT_OF_SCOPE GROUP OTHER_GROUP
  tutor_client.py stdio BINARY DATA_DIR TOKEN IN_SCOPE OUT_OF_SCOPE GROUP OTHER_GROUP

Lists the tools and resources, calls every tool on a learner of the tutor's group, calls the
learner tools on a learner outside it and the overview on another group, and prints one JSON
object with what it saw. The Rust test (tests/mcp.rs) asserts on that object.
"""

import asyncio
import json
import sys
from contextlib import asynccontextmanager

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


@asynccontextmanager
async def connect(argv):
    if argv[0] == "http":
        url, token = argv[1], argv[2]
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with client, streamable_http_client(url, http_client=client) as streams:
            yield streams[0], streams[1], argv[3:]
    else:
        binary, data_dir, token = argv[1], argv[2], argv[3]
        params = StdioServerParameters(
            command=binary,
            args=["mcp", "--data-dir", data_dir, "--listen", "127.0.0.1:0"],
            env={"LEARNPULSE_KEY": token, "LEARNPULSE_LOG": "warn"},
        )
        async with stdio_client(params) as (read, write):
            yield read, write, argv[4:]


def outcome(result):
    return {
        "is_error": bool(result.is_error),
        "structured": result.structured_content,
        "text": [c.text for c in result.content if getattr(c, "text", None)],
    }


async def main(argv):
    async with connect(argv) as (read, write, rest):
        learner, outsider, group, other_group = rest
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            resources = await session.list_resources()
            report = {
                "tools": sorted(t.name for t in tools.tools),
                "resources": sorted(str(r.uri) for r in resources.resources),
                "read": {},
                "calls": {},
                "refused": {},
            }
            for r in resources.resources:
                contents = await session.read_resource(r.uri)
                report["read"][str(r.uri)] = json.loads(contents.contents[0].text)
            calls = {
                "learner_state": {"learner": learner},
                "explain_learner": {"learner": learner},
                "group_overview": {"group": group},
                "recommend_interventions": {"learner": learner},
                "record_tutor_action": {
                    "learner": learner,
                    "action": "worked_example",
                    "skill": "fractions",
                    "outcome": "helped",
                    "note": "walked through 3/4 + 1/8; mail me at tutor@example.com",
                },
            }
            for name, args in calls.items():
                report["calls"][name] = outcome(await session.call_tool(name, args))
            # The least a tutor can say: what it did, nothing more.
            report["calls"]["record_tutor_action (minimal)"] = outcome(
                await session.call_tool("record_tutor_action", {"learner": learner, "action": "hint"})
            )
            for name, args in {
                "learner_state": {"learner": outsider},
                "explain_learner": {"learner": outsider},
                "recommend_interventions": {"learner": outsider},
                "record_tutor_action": {"learner": outsider, "action": "hint"},
                "group_overview": {"group": other_group},
            }.items():
                report["refused"][name] = outcome(await session.call_tool(name, args))
            print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
