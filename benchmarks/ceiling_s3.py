"""The ceiling for boto3 benchmarks: an "S3" that replays responses recorded from mockpanel before the run.

The same bytes mockpanel answers (status, headers, body), the same HTTP stack (uvicorn, httptools, uvloop), and no S3
work at all: what boto3 achieves against it is the most any server can give those calls on this machine.
Run: python benchmarks/ceiling_s3.py PORT RECORDED.json (bench_s3.py records and starts it).
"""

from __future__ import annotations

import base64
import json
import sys

import uvicorn

SKIPPED = {"date", "server", "content-length", "transfer-encoding", "connection"}


def make_app(recorded: dict):
    answers = {}
    for name, answer in recorded.items():
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer["headers"] if k.lower() not in SKIPPED]
        body = base64.b64decode(answer["body"])
        answers[name] = (answer["status"], headers + [(b"content-length", str(len(body)).encode())], body)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:  # the request body is read and dropped
            message = await receive()
            more = message.get("more_body", False)
        method, query = scope["method"], scope["query_string"].decode()
        if method == "GET" and "list-type=2" in query:
            token = next((p.split("=", 1)[1] for p in query.split("&") if p.startswith("continuation-token=")), "")
            name = f"list:{token}"
        else:
            name = method
        status, headers, body = answers.get(name, answers["GET"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app


if __name__ == "__main__":
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path) as fh:
        recorded = json.load(fh)
    uvicorn.run(make_app(recorded), host="127.0.0.1", port=port, log_level="error", access_log=False, http="httptools", loop="uvloop")
