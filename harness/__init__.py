"""Machinery shared by tests/ and bench/, never shipped in the image (the Dockerfile copies services/ only).

stack.py        the real service processes (`python -m <module>`), servers, scratch databases, isolation
servers.py      uvicorn apps in background threads on free ports
sse.py          the one SSE client: frames out of any byte stream, and their fields
percentiles.py  the one percentile function
polling.py      `until`: a polled condition instead of a fixed sleep
lanes.py        test lanes: a test that starts a process must be marked e2e, fault or browser
"""
