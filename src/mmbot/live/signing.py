"""Bybit V5 request signing and API-key loading (keys never leave this module in clear text).

REST: ``sign = HMAC_SHA256(secret, timestamp_ms + api_key + recv_window_ms + payload)`` where payload
is the query string for GET and the raw JSON body for POST; sent as the headers X-BAPI-API-KEY,
X-BAPI-SIGN, X-BAPI-SIGN-TYPE=2, X-BAPI-TIMESTAMP, X-BAPI-RECV-WINDOW.
Private websocket: ``{"op":"auth","args":[api_key, expires_ms, HMAC_SHA256(secret, "GET/realtime" + expires_ms)]}``.
The emulator verifies with the same functions, so a signing bug fails the end-to-end tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mmbot import env as envvars
from mmbot.errors import UserError

ENV_KEY = "BYBIT_API_KEY"
ENV_SECRET = "BYBIT_API_SECRET"
DEFAULT_RECV_WINDOW_MS = 5000


@dataclass(frozen=True)
class ApiKeys:
    """An API key pair. ``repr``/``str`` never show the secret (nor the full key)."""

    key: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"ApiKeys(key={self.key[:4]}…, secret=***)"

    __str__ = __repr__


def sign_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def rest_signature(keys: ApiKeys, timestamp_ms: int, recv_window_ms: int, payload: str) -> str:
    return sign_hex(keys.secret, f"{timestamp_ms}{keys.key}{recv_window_ms}{payload}")


def rest_headers(
    keys: ApiKeys, timestamp_ms: int, payload: str, recv_window_ms: int = DEFAULT_RECV_WINDOW_MS
) -> dict[str, str]:
    return {
        "X-BAPI-API-KEY": keys.key,
        "X-BAPI-SIGN": rest_signature(keys, timestamp_ms, recv_window_ms, payload),
        "X-BAPI-SIGN-TYPE": "2",
        "X-BAPI-TIMESTAMP": str(timestamp_ms),
        "X-BAPI-RECV-WINDOW": str(recv_window_ms),
        "Content-Type": "application/json",
    }


def ws_auth_args(keys: ApiKeys, expires_ms: int) -> list[object]:
    return [keys.key, expires_ms, sign_hex(keys.secret, f"GET/realtime{expires_ms}")]


def ws_auth_valid(keys: ApiKeys, args: list[object]) -> bool:
    if len(args) != 3:
        return False
    key, expires, sig = args
    return hmac.compare_digest(str(key), keys.key) and hmac.compare_digest(
        str(sig), sign_hex(keys.secret, f"GET/realtime{expires}")
    )


def load_keys(keys_file: Path | None = None, env: dict[str, str] | None = None) -> ApiKeys:
    """Keys from KEYS_FILE (JSON ``{"key":..,"secret":..}`` or ``key=``/``secret=`` lines, mode 0600
    or stricter, else refused) or from $BYBIT_API_KEY/$BYBIT_API_SECRET. UserError names the input."""
    env = envvars.snapshot() if env is None else env
    if keys_file is not None:
        path = Path(keys_file)
        if not path.is_file():
            raise UserError(f"--keys-file {path}: not found")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise UserError(
                f"--keys-file {path}: permissions {mode:04o} are too open (need 0600: chmod 600 {path})"
            )
        text = path.read_text()
        data: dict[str, str] = {}
        try:
            obj = json.loads(text)
            if isinstance(obj, dict):
                data = {str(k): str(v) for k, v in obj.items()}
        except json.JSONDecodeError:
            for line in text.splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    k, v = line.split("=", 1)
                    data[k.strip()] = v.strip()
        key = data.get("key") or data.get("api_key") or ""
        secret = data.get("secret") or data.get("api_secret") or ""
        if not key or not secret:
            raise UserError(f"--keys-file {path}: needs both 'key' and 'secret'")
        return ApiKeys(key, secret)
    key = env.get(ENV_KEY, "")
    secret = env.get(ENV_SECRET, "")
    if not key or not secret:
        raise UserError(
            f"API keys missing: set ${ENV_KEY} and ${ENV_SECRET} or pass --keys-file (mode 0600)"
        )
    return ApiKeys(key, secret)
