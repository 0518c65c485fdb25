"""The gateway: REST and WebSocket access to the platform for people, dashboards and remote bots (FastAPI on
uvicorn with uvloop), over one multi-account link to the engine.

docs/GATEWAY.md describes it.
"""
