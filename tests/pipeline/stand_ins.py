"""Stand-ins for what moto cannot do, put on the jobs' PATH by the rehearsal (each says so when it acts):
`aws signer ...` (moto has no AWS Signer), the RDS CA download (no internet here), the API behind API
Gateway for the smoke test (moto cannot invoke a Lambda without Docker), and `gh attestation verify` (no GitHub
here: tests/pipeline/attestations.py). The `aws` wrapper also checks each call's endpoint against the job's
harden-runner allow-list, which the harden-runner stand-in records (egress itself is not blocked here)."""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.pipeline.attestations import install_gh

RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

AWS_WRAPPER = """#!/usr/bin/env bash
# Pipeline rehearsal stand-in: moto has no AWS Signer, so `aws signer ...` is answered by signer.py; every
# other command is the real AWS CLI (against moto through AWS_ENDPOINT_URL). In a job with a harden-runner
# allow-list, the endpoint the real CLI would reach (the service in the region, IAM's global one, or the bucket's
# virtual host) must be on it, as the agent would otherwise block it.
if [[ -n ${REHEARSAL_ALLOWED_ENDPOINTS:-} && -n ${1:-} ]]; then
  service=$1 region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}} bucket= prev=
  for a; do [[ $prev == --bucket ]] && bucket=$a; prev=$a; done
  case $service in
    iam) host=iam.amazonaws.com ;;
    s3api | s3) host=${bucket:+$bucket.}s3.$region.amazonaws.com ;;
    *) host=$service.$region.amazonaws.com ;;
  esac
  if [[ " $REHEARSAL_ALLOWED_ENDPOINTS " != *" $host:443 "* ]]; then
    echo "==> [rehearsal stand-in] harden-runner would block $host:443 (aws $service): not on this job's allow-list" >&2
    exit 1
  fi
fi
if [[ ${1:-} == signer ]]; then exec "%(python)s" "%(dir)s/signer.py" "$@"; fi
exec "%(aws)s" "$@"
"""

CURL_WRAPPER = """#!/usr/bin/env bash
# Pipeline rehearsal stand-in: no internet here. The RDS CA URL is answered with a locally generated
# certificate named Amazon RDS; every other call is the real curl.
for arg; do
  if [[ $arg == "%(url)s" ]]; then
    out=; prev=
    for a; do [[ $prev == --output || $prev == -o ]] && out=$a; prev=$a; done
    echo "==> [rehearsal stand-in] curl $arg: a local certificate named Amazon RDS" >&2
    cp "%(pem)s" "${out:-/dev/stdout}"; exit 0
  fi
done
exec "%(curl)s" "$@"
"""

SIGNER = '''"""`aws signer` stand-in: start-signing-job copies the unsigned object to signed/ (no signature: moto has
no Signer, and the emulated functions carry no code-signing config); wait and describe answer from a jobs file."""
import json, os, sys, uuid
from pathlib import Path
import boto3

JOBS = Path(os.environ["REHEARSAL_SIGNER_JOBS"])
jobs = json.loads(JOBS.read_text()) if JOBS.exists() else {}
args = sys.argv[2:]
command = args[0]
opts = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("--")}
def parse(shorthand):
    inner = shorthand.split("={", 1)[1].rstrip("}")
    return dict(part.split("=", 1) for part in inner.split(","))
if command == "start-signing-job":
    source, destination = parse(opts["--source"]), parse(opts["--destination"])
    job = uuid.uuid4().hex
    s3 = boto3.client("s3")
    key = destination["prefix"] + job + ".zip"
    s3.copy_object(Bucket=destination["bucketName"], Key=key,
                   CopySource={"Bucket": source["bucketName"], "Key": source["key"], "VersionId": source["version"]})
    jobs[job] = {"bucket": destination["bucketName"], "key": key, "profile": opts["--profile-name"]}
    JOBS.write_text(json.dumps(jobs))
    print("==> [rehearsal stand-in] aws signer start-signing-job: copied, not signed (moto has no Signer)",
          file=sys.stderr)
    print(job)
elif command == "wait":
    sys.exit(0 if opts.get("--job-id") in jobs else 1)
elif command == "describe-signing-job":
    print(jobs[opts["--job-id"]]["key"])
else:
    sys.exit(f"signer stand-in: {command} is not modelled")
'''


def rds_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Amazon RDS rehearsal Root CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def install(directory: Path, *, python: str, real_aws: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    real_curl = shutil.which("curl") or "/usr/bin/curl"
    (directory / "signer.py").write_text(SIGNER)
    pem = rds_ca(directory / "rds-ca.pem")
    install_gh(directory)
    for name, body in (
        ("aws", AWS_WRAPPER % {"python": python, "dir": directory, "aws": real_aws}),
        ("curl", CURL_WRAPPER % {"url": RDS_CA_URL, "pem": pem, "curl": real_curl}),
    ):
        (directory / name).write_text(body)
        (directory / name).chmod(0o755)


class ApiStandIn:
    """The API behind API Gateway for `make smoke-test`: 200 + JSON for a key API Gateway holds as enabled and
    attached to a usage plan of the stage, 403 without one (as API Gateway answers)."""

    def __init__(self, valid_keys: Any) -> None:
        self.valid_keys = valid_keys
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                key = self.headers.get("x-api-key")
                route = self.path.removeprefix("/v1")  # the stage (API Gateway's invoke URL ends in /v1)
                if not key or key not in stand_in.valid_keys():
                    status, body = 403, {"message": "Forbidden"}
                elif route.startswith("/v1/health"):
                    status, body = 200, {"status": "ok"}
                elif route.startswith("/v1/events"):
                    status, body = 200, {"items": [], "next_cursor": None}
                else:
                    status, body = 404, {"error": {"code": "not_found"}}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                sys.stderr.write("==> [rehearsal stand-in] API: " + (args[0] % args[1:]) + "\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ApiStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
