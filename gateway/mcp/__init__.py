"""The MCP server for agents (`/mcp`) and the same tools as an OpenAI function-calling schema
(`GET /v1/tools/media_generation.json`); docs/mcp.md."""
