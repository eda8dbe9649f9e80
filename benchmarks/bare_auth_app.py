"""The baseline: a bare FastAPI app with the auth mock's /health and /api/auth/login and the same per-request work
(bcrypt at the same cost with the same verification cache, the same JWT claims), but no mockpanel middleware."""

from __future__ import annotations

import hashlib
import socket
import sys
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import uvicorn
from fastapi import FastAPI, HTTPException
from passlib.context import CryptContext
from pydantic import BaseModel

SECRET = "dev-secret-key-change-in-production"
crypt = CryptContext(schemes=["bcrypt"], bcrypt__rounds=4)
USERS = {"alice@example.com": {"id": "test-user-123", "email": "alice@example.com", "name": "Alice Johnson", "created_at": "2024-01-01T00:00:00", "hash": crypt.hash("password123")}}
verified: dict = {}
counts = {"total": 0, "endpoints": {}}


def count(key: str) -> None:
    counts["total"] += 1
    counts["endpoints"][key] = counts["endpoints"].get(key, 0) + 1

app = FastAPI()


class Login(BaseModel):
    email: str
    password: str


class Metrics(BaseModel):
    total_requests: int
    total_errors: int
    error_rate: float
    endpoints: dict[str, int]


class Health(BaseModel):
    status: str
    service: str
    timestamp: str
    metrics: Metrics


@app.get("/health", response_model=Health)
async def health():
    count("GET /health")
    return {"status": "healthy", "service": "auth-api-mock", "timestamp": datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat(),
            "metrics": {"total_requests": counts["total"], "total_errors": 0, "error_rate": 0.0, "endpoints": dict(counts["endpoints"])}}


@app.post("/api/auth/login")
async def login(body: Login):
    count("POST /api/auth/login")
    user = USERS.get(body.email.lower())
    if user is None:
        raise HTTPException(401, "invalid email or password")
    key = (user["hash"], hashlib.sha256(body.password.encode()).digest())
    if key not in verified:
        verified[key] = crypt.verify(body.password, user["hash"])
    if not verified[key]:
        raise HTTPException(401, "invalid email or password")
    now = datetime.now(timezone.utc)
    public = {k: user[k] for k in ("id", "email", "name", "created_at")}

    def token(kind: str, ttl: timedelta) -> str:
        claims = {"sub": user["id"], "email": user["email"], "name": user["name"], "type": kind, "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()), "jti": uuid.uuid4().hex}
        return jwt.encode(claims, SECRET, algorithm="HS256")

    return {"access_token": token("access", timedelta(hours=24)), "refresh_token": token("refresh", timedelta(days=30)), "token_type": "bearer", "expires_in": 86400, "user": public}


if __name__ == "__main__":
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, loop="uvloop", http="httptools", log_config=None, access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)
