"""The SSM-compatible API driven by the real AWS CLI and boto3 (pinned in
requirements.txt) against a real `patchfleet server` over HTTPS on loopback,
trusting only the server's CA.

Needs PATCHFLEET_BIN and PATCHFLEET_AGENT_BIN (scripts/test sets them; they
default to target/debug). PostgreSQL runs when PATCHFLEET_TEST_POSTGRES_URL
names a server (scripts/test starts one); without it the PostgreSQL variants
fail, they are never skipped.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import secrets
import socket
import ssl
import subprocess
import sys
import time

import boto3
import botocore.config
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east-1"
MODEL = json.loads(
    (REPO / "crates/server/src/api/ssm/ssm-api-subset.json").read_text()
)


def binary(env, name):
    path = pathlib.Path(os.environ.get(env, REPO / "target/debug" / name))
    if not path.is_file():
        pytest.fail(f"{path} not found: build it (cargo build) or set {env}")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `patchfleet server` process on a fresh data directory."""

    def __init__(self, tmp, database=None):
        self.data = tmp / "server"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log = open(tmp / "server.log", "w")
        cmd = [
            str(binary("PATCHFLEET_BIN", "patchfleet")),
            "server",
            "--data-dir",
            str(self.data),
            "--listen",
            f"127.0.0.1:{self.port}",
        ]
        if database:
            cmd += ["--database", database]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        fields = {}
        deadline = time.time() + 60
        while "secret access key" not in fields:
            line = self.proc.stdout.readline()
            if not line:
                pytest.fail(
                    f"the server stopped: {(tmp / 'server.log').read_text()}"
                )
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
            assert time.time() < deadline, "the server did not announce its key"
        self.ca_fingerprint = fields["CA fingerprint"]
        self.key = fields["access key id"]
        self.secret = fields["secret access key"]
        self.ca = str(self.data / "ca.pem")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def client(self, key=None, secret=None, region=REGION, **config):
        c = boto3.client(
            "ssm",
            region_name=region,
            endpoint_url=self.url,
            verify=self.ca,
            aws_access_key_id=key or self.key,
            aws_secret_access_key=secret or self.secret,
            config=botocore.config.Config(retries={"max_attempts": 1}, **config),
        )
        c.meta.events.register("before-parse.ssm.*", check_output_shape)
        return c

    def env(self, key=None, secret=None):
        """The environment of an `aws` CLI configured for this server."""
        home = self.data.parent / "home"
        home.mkdir(exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k != "HOME"
        }
        env.update(
            HOME=str(home),
            AWS_ACCESS_KEY_ID=key or self.key,
            AWS_SECRET_ACCESS_KEY=secret or self.secret,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL_SSM=self.url,
            AWS_CA_BUNDLE=self.ca,
            AWS_CONFIG_FILE=str(home / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
            AWS_MAX_ATTEMPTS="1",
        )
        return env

    def aws(self, *args, key=None, secret=None, check=True, cwd=None):
        """`aws ssm …` with the CLI of the virtual environment; JSON out."""
        aws = pathlib.Path(sys.executable).parent / "aws"
        p = subprocess.run(
            [str(aws), "ssm", *args, "--output", "json"],
            env=self.env(key, secret),
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
        )
        if check:
            assert p.returncode == 0, f"aws ssm {' '.join(args)}: {p.stderr}"
            return json.loads(p.stdout) if p.stdout.strip() else None
        return p

    def raw(self, target, body, headers=None, sign=True, when=None, **sign_args):
        """One POST / over HTTPS, signed here (independently of botocore)."""
        h = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            "Host": f"127.0.0.1:{self.port}",
        }
        h.update(headers or {})
        if sign:
            h = sigv4(
                h,
                body,
                sign_args.get("key", self.key),
                sign_args.get("secret", self.secret),
                sign_args.get("region", REGION),
                sign_args.get("service", "ssm"),
                when or datetime.datetime.now(datetime.timezone.utc),
            )
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        conn.request("POST", "/", body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(data) if data else None


def sigv4(headers, body, key, secret, region, service, when):
    """SigV4 as spec §1.9 states it, re-derived without botocore."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    h = {k.lower(): v for k, v in headers.items()}
    h["x-amz-date"] = amz_date
    names = sorted(h)
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{n}:{h[n].strip()}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )

    def mac(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()

    k = mac(mac(mac(mac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={sig}"
    )
    return out


def check_output_shape(operation_model=None, response_dict=None, **_):
    """Every member a success answer carries must exist in the model's
    output shape (botocore would silently drop a misspelt one)."""
    if not response_dict or response_dict.get("status_code") != 200:
        return
    body = json.loads(response_dict["body"] or b"{}")
    out = MODEL["operations"][operation_model.name].get("output", {}).get("shape")
    if out:
        walk(out, body, operation_model.name)


def walk(shape_name, value, path):
    shape = MODEL["shapes"][shape_name]
    t = shape["type"]
    if t == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        for k, v in value.items():
            assert k in shape["members"], f"{path}: {k} is not a member of {shape_name}"
            walk(shape["members"][k]["shape"], v, f"{path}.{k}")
    elif t == "list":
        assert isinstance(value, list), f"{path}: expected a list"
        for i, v in enumerate(value):
            walk(shape["member"]["shape"], v, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), f"{path}: expected a map"
        for k, v in value.items():
            walk(shape["value"]["shape"], v, f"{path}.{k}")
    elif t == "string":
        assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
        if "enum" in shape:
            assert value in shape["enum"], f"{path}: {value} not in {shape['enum']}"
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r}"
    elif t == "boolean":
        assert isinstance(value, bool), f"{path}: {value!r}"
    elif t == "timestamp":
        assert isinstance(value, (int, float)), f"{path}: {value!r}"


def create_pg_database():
    url = os.environ.get("PATCHFLEET_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "PATCHFLEET_TEST_POSTGRES_URL is not set: run ./scripts/test, or "
            'eval "$(scripts/pg start)" first'
        )
    psql = next(
        (str(p) for p in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/psql"))),
        "psql",
    )
    name = f"pf_ssm_{secrets.token_hex(6)}"
    subprocess.run([psql, url, "-qc", f"CREATE DATABASE {name}"], check=True)
    base = url.split("?")[0]
    return url, psql, name, base[: base.rfind("/")] + "/" + name


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"ssm-{request.param}")
    database = None
    pg = None
    if request.param == "postgres":
        admin, psql, name, database = create_pg_database()
        pg = (admin, psql, name)
    s = Server(tmp, database)
    yield s
    s.stop()
    if pg:
        admin, psql, name = pg
        subprocess.run([psql, admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("ssm-fleet"))
    yield s
    s.stop()
