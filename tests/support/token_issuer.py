"""A token service for distribution's ``auth.token`` provider, on 127.0.0.1.

It signs RS256 JWTs with a throwaway CA-issued key, for exactly the scopes a
client asks for that the user is granted (the intersection, as real token services
do). ``expired=True`` makes it hand out tokens the registry will refuse as expired
while still promising the client a long lifetime: a clock-skew victim.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.serving import serve_in_background

SERVICE = "matrix-test-registry"
ISSUER = "matrix-test-issuer"
# distribution accepts tokens up to 60 s past their exp; these are well beyond.
_EXPIRED_BY = 600


@dataclass
class User:
    password: str
    # repository glob -> actions granted, e.g. {"*": {"pull", "push"}}
    grants: dict[str, set[str]]


@dataclass
class TokenIssuer:
    server: ThreadingHTTPServer
    key: rsa.RSAPrivateKey
    chain: list[bytes]  # DER, leaf first
    bundle: Path
    users: dict[str, User]
    anonymous: dict[str, set[str]] = field(default_factory=dict)
    lifetime: int = 300
    expired: bool = False
    requests: list[tuple[str | None, list[str]]] = field(default_factory=list)

    @property
    def realm(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/token"

    def auth_config(self) -> dict[str, Any]:
        """distribution's ``auth`` block for a registry that trusts this issuer."""
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.bundle),
            }
        }

    def requests_for(self, repository: str) -> list[tuple[str | None, list[str]]]:
        """The token requests whose scopes name ``repository``."""
        return [
            (user, scopes)
            for user, scopes in self.requests
            if any(scope.split(":")[1] == repository for scope in scopes)
        ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def issue(self, user: str | None, scopes: list[str]) -> str:
        grants = self.users[user].grants if user else self.anonymous
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = set().union(
                *(granted for pattern, granted in grants.items() if fnmatch.fnmatch(name, pattern))
            )
            wanted = [a for a in actions.split(",") if a in allowed]
            if wanted:
                access.append({"type": kind, "name": name, "actions": wanted})
        now = int(time.time())
        if self.expired:
            now -= _EXPIRED_BY + self.lifetime
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 1,
            "exp": now + self.lifetime,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(der).decode() for der in self.chain],
        }
        signing_input = f"{_b64url(json.dumps(header))}.{_b64url(json.dumps(claims))}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def start_token_issuer(
    workdir: Path,
    users: dict[str, User],
    anonymous: dict[str, set[str]] | None = None,
) -> TokenIssuer:
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _certificate("matrix test CA", None)
    key, leaf = _certificate("matrix test token signer", (ca_key, ca_cert))
    bundle = workdir / "token-ca.pem"
    bundle.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    issuer = TokenIssuer(
        server,
        key,
        [leaf.public_bytes(serialization.Encoding.DER)],
        bundle,
        users,
        anonymous or {},
    )
    server.issuer = issuer  # type: ignore[attr-defined]
    serve_in_background(server)
    return issuer


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        issuer: TokenIssuer = self.server.issuer  # type: ignore[attr-defined]
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        scopes = [s for value in query.get("scope", []) for s in value.split(" ")]
        user = None
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            known = issuer.users.get(name)
            if known is None or not secrets.compare_digest(known.password, password):
                self._answer(401, {"details": "incorrect username or password"})
                return
            user = name
        issuer.requests.append((user, scopes))
        token = issuer.issue(user, scopes)
        self._answer(
            200,
            {
                "token": token,
                "access_token": token,
                "expires_in": issuer.lifetime,
                "issued_at": dt.datetime.now(dt.UTC).isoformat(),
            },
        )

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests read issuer.requests instead


def _b64url(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _certificate(
    common_name: str, signer: tuple[rsa.RSAPrivateKey, x509.Certificate] | None
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signing_key, issuer_name = (signer[0], signer[1].subject) if signer else (key, name)
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=signer is None, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )
    return key, certificate
