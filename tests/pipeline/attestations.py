"""Stand-ins for GitHub artifact attestations, shared by the pipeline rehearsal and the deploy script's tests.

`record` stands in for actions/attest-build-provenance: per subject (a file's sha256) it stores an in-toto
statement of the SLSA provenance v1 predicate type together with the certificate fields Fulcio would copy from
the job's OIDC token: the source repository, the signer workflow (the token's job_workflow_ref) and its digest
(job_workflow_sha), the source ref and digest (ref, sha) and the runner environment. Nothing is signed: there is no
Sigstore here, and the store (a JSON-lines file) stands in for GitHub's attestations API.

GH_SCRIPT stands in for `gh attestation verify FILE`: it applies the policy flags the deploy script passes
(--repo, --signer-workflow, --signer-digest, --source-ref, --source-digest, --predicate-type,
--deny-self-hosted-runners, --cert-oidc-issuer) to the statements stored for the file's sha256, the way gh applies
them to a verified certificate, and fails as gh does: no attestation for the digest, none matching the policy, no
token (GH_TOKEN). Any other command or flag fails: the stand-in models only what the deploy uses.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
ISSUER = "https://token.actions.githubusercontent.com"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(store: Path, files: list[Path], claims: dict[str, Any]) -> list[dict[str, Any]]:
    """Store one statement per file, with the certificate fields derived from the job's OIDC token claims."""
    certificate = {
        "Issuer": ISSUER,
        "SourceRepositoryURI": f"https://github.com/{claims['repository']}",
        "BuildSignerURI": f"https://github.com/{claims['job_workflow_ref']}",
        "BuildSignerDigest": claims["job_workflow_sha"],
        "SourceRepositoryRef": claims["ref"],
        "SourceRepositoryDigest": claims["sha"],
        "RunnerEnvironment": claims.get("runner_environment", "github-hosted"),
        "RunInvocationURI": f"https://github.com/{claims['repository']}/actions/runs/{claims['run_id']}",
    }
    statements = [
        {
            "subject": {"name": path.name, "digest": {"sha256": sha256(path)}},
            "predicateType": SLSA_PROVENANCE_V1,
            "certificate": certificate,
        }
        for path in files
    ]
    with store.open("a", encoding="utf-8") as handle:
        for statement in statements:
            handle.write(json.dumps(statement, sort_keys=True) + "\n")
    return statements


GH_SCRIPT = '''#!%(python)s
"""`gh` stand-in (tests/pipeline/attestations.py): only `gh attestation verify`, against the statements in
$ATTESTATION_STORE; every call is appended to $FAKE_LOG when set."""
import hashlib, json, os, re, sys

args = sys.argv[1:]
if os.environ.get("FAKE_LOG"):
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write("gh " + " ".join(args) + "\\n")
if args[:2] != ["attestation", "verify"] or len(args) < 3:
    sys.exit("gh stand-in: only `gh attestation verify FILE ...` is modelled")
if not os.environ.get("GH_TOKEN"):
    print("To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment variable.", file=sys.stderr)
    sys.exit(4)
path, rest = args[2], args[3:]
known = {"--repo", "--signer-workflow", "--signer-digest", "--source-ref", "--source-digest", "--predicate-type",
         "--cert-oidc-issuer"}
opts, flags, i = {}, set(), 0
while i < len(rest):
    if rest[i] == "--deny-self-hosted-runners":
        flags.add(rest[i]); i += 1
    elif rest[i] in known and i + 1 < len(rest):
        opts[rest[i]] = rest[i + 1]; i += 2
    else:
        sys.exit(f"gh stand-in: {rest[i]} is not modelled")
if "--repo" not in opts:
    sys.exit("gh stand-in: --repo is required")
digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
store = os.environ.get("ATTESTATION_STORE", "")
found = []
if store and os.path.exists(store):
    found = [json.loads(line) for line in open(store) if line.strip()]
found = [s for s in found if s["subject"]["digest"]["sha256"] == digest]
print(f"==> [stand-in] gh attestation verify {os.path.basename(path)}: statements from the rehearsal's store, "
      "no Sigstore signature checked", file=sys.stderr)
if not found:
    print(f"\\u2717 No attestations found for subject sha256:{digest}", file=sys.stderr)
    sys.exit(1)
predicate = opts.get("--predicate-type", "%(slsa)s")
found = [s for s in found if s["predicateType"] == predicate]
if not found:
    print(f"\\u2717 No attestations found with predicate type: {predicate}", file=sys.stderr)
    sys.exit(1)
repo = opts["--repo"]
def signer_matches(uri):
    workflow = opts["--signer-workflow"]
    workflow = workflow[len("github.com/"):] if workflow.startswith("github.com/") else workflow
    ref = "" if "@" in workflow else r"(@refs/[^@]+)?"
    return re.fullmatch(re.escape("https://github.com/" + workflow) + ref, uri) is not None
def passes(cert):
    checks = [cert["SourceRepositoryURI"].lower() == f"https://github.com/{repo}".lower(),
              cert["Issuer"] == opts.get("--cert-oidc-issuer", "%(issuer)s")]
    if "--signer-workflow" in opts:
        checks.append(signer_matches(cert["BuildSignerURI"]))
    else:  # gh's default: a workflow of the --repo repository
        checks.append(cert["BuildSignerURI"].lower().startswith(f"https://github.com/{repo}/".lower()))
    for flag, field in (("--signer-digest", "BuildSignerDigest"), ("--source-ref", "SourceRepositoryRef"),
                        ("--source-digest", "SourceRepositoryDigest")):
        if flag in opts:
            checks.append(cert[field] == opts[flag])
    if "--deny-self-hosted-runners" in flags:
        checks.append(cert["RunnerEnvironment"] == "github-hosted")
    return all(checks)
if not any(passes(s["certificate"]) for s in found):
    print("\\u2717 Verification failed: no attestation matches the policy " + json.dumps(opts), file=sys.stderr)
    sys.exit(1)
print(f"\\u2713 Verification succeeded! sha256:{digest}", file=sys.stderr)
'''


def install_gh(directory: Path) -> Path:
    """Write the `gh` stand-in into `directory` (put it first on PATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    gh = directory / "gh"
    gh.write_text(GH_SCRIPT % {"python": sys.executable, "slsa": SLSA_PROVENANCE_V1, "issuer": ISSUER})
    gh.chmod(0o755)
    return gh
