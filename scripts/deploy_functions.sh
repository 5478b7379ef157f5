#!/usr/bin/env bash
# Deploy the two Lambda packages the way deploy.yml does; each subcommand is a make target.
#
#   verify   refuse bytes the gate did not build: dist/lambda against its manifest (every zip's and SBOM's sha256,
#            SHA256SUMS, the manifest's commit is this one; scripts/build_manifest.py, standard library only), then
#            each of manifest.json, the zips and the SBOMs against its build provenance attestation
#            (`gh attestation verify`: this repository, signed by ci.yml at this commit, built from refs/heads/main
#            on a GitHub-hosted runner). No AWS call, no credentials needed.
#   deploy   verify (above), then sign dist/lambda/{ingest,api}.zip with AWS Signer, update-function-code from the
#            signed object, publish a version, move the `live` alias (the previous version is recorded for
#            rollback); manifest.json is kept beside the unsigned packages (unsigned/<commit>/manifest.json)
#   smoke    call the API through API Gateway with a key read from Secrets Manager
#   rollback move `live` back to the recorded previous version of every function that was moved
#
# Needs AWS credentials (in CI: the OIDC deploy role) and the aws CLI. Configuration, all required:
#   RAMPART_ARTIFACT_BUCKET    versioned S3 bucket for unsigned/ and signed/ packages
#   RAMPART_SIGNING_PROFILE    AWS Signer profile (platform AWSLambda-SHA384-ECDSA)
#   RAMPART_INGEST_FUNCTION    ingest function name
#   RAMPART_API_FUNCTION       API function name
#   RAMPART_API_URL            the API stage's invoke URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/v1
#   RAMPART_API_KEY_SECRET_ID  the smoke-test client's key secret (smoke only): <name>/api-keys/smoke-test,
#                              written by `rampart keys create --client smoke-test` (JSON, key in .current.value);
#                              only the deploy role may read it
# verify (and deploy) also need the gh CLI with GH_TOKEN (read access to the repository's attestations) and:
#   GITHUB_REPOSITORY          the repository whose ci.yml must have attested the bytes (owner/name)
#   GITHUB_SHA                 the commit: the manifest's, the attestation's source digest and the signer's digest
#   RAMPART_RELEASE_REF        the ref the bytes must be built from (default refs/heads/main)
set -euo pipefail

ALIAS=live
STATE_DIR=${RAMPART_DEPLOY_STATE_DIR:-build/deploy}
STATE=$STATE_DIR/alias-moves.tsv # function <TAB> previous version <TAB> new version
DIST=${RAMPART_DIST_DIR:-dist/lambda}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
SIGNER_WORKFLOW=.github/workflows/ci.yml # the gate: it builds the zips and attests them (its provenance job)
SLSA_PROVENANCE=https://slsa.dev/provenance/v1

log() { printf '==> [deploy] %s\n' "$*" >&2; }
die() { printf '==> [deploy] FAIL: %s\n' "$*" >&2; exit 1; }
need() { for v in "$@"; do [[ -n "${!v:-}" ]] || die "$v is not set"; done; }

function_name() {
  case "$1" in
    ingest) printf '%s' "$RAMPART_INGEST_FUNCTION" ;;
    api) printf '%s' "$RAMPART_API_FUNCTION" ;;
    *) die "unknown function $1" ;;
  esac
}

# sign <component> <revision>: prints the S3 key of the signed package.
sign() {
  local component=$1 revision=$2 zip key version job signed_key
  zip=$DIST/$component.zip
  [[ -s $zip ]] || die "$zip is missing: run make package first"
  key="unsigned/$revision/$component.zip"
  version=$(aws s3api put-object --bucket "$RAMPART_ARTIFACT_BUCKET" --key "$key" --body "$zip" \
    --query VersionId --output text)
  [[ -n $version && $version != None ]] || die "the artifact bucket is not versioned (Signer needs an object version)"
  job=$(aws signer start-signing-job --profile-name "$RAMPART_SIGNING_PROFILE" \
    --source "s3={bucketName=$RAMPART_ARTIFACT_BUCKET,key=$key,version=$version}" \
    --destination "s3={bucketName=$RAMPART_ARTIFACT_BUCKET,prefix=signed/$revision/$component-}" \
    --query jobId --output text)
  log "$component: signing job $job"
  aws signer wait successful-signing-job --job-id "$job" || die "$component: signing job $job did not succeed"
  signed_key=$(aws signer describe-signing-job --job-id "$job" --query 'signedObject.s3.key' --output text)
  [[ -n $signed_key && $signed_key != None ]] || die "$component: signing job $job produced no signed object"
  printf '%s' "$signed_key"
}

# The files the gate attested, as its manifest names them: manifest.json, then each zip and its SBOM.
attested_files() {
  "$PYTHON" - "$DIST/manifest.json" <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1], encoding="utf-8"))
print("manifest.json")
for name, entry in sorted(manifest["artifacts"].items()):
    print(name)
    print(entry["sbom"]["file"])
PY
}

cmd_verify() {
  need GITHUB_REPOSITORY GITHUB_SHA GH_TOKEN
  local revision=$GITHUB_SHA ref=${RAMPART_RELEASE_REF:-refs/heads/main} file files
  log "verify: $DIST against its manifest (commit $revision)"
  "$PYTHON" "$ROOT/scripts/build_manifest.py" verify --dir "$DIST" --commit "$revision" >&2 \
    || die "verify: $DIST is not what the gate built (see above); nothing signed, nothing deployed"
  files=$(attested_files) || die "verify: cannot read $DIST/manifest.json"
  for file in $files; do
    # Signer digest = source digest = this commit: ci.yml runs as a reusable workflow of this very commit.
    gh attestation verify "$DIST/$file" --repo "$GITHUB_REPOSITORY" \
      --signer-workflow "$GITHUB_REPOSITORY/$SIGNER_WORKFLOW" --signer-digest "$revision" \
      --source-ref "$ref" --source-digest "$revision" \
      --predicate-type "$SLSA_PROVENANCE" --deny-self-hosted-runners >&2 \
      || die "verify: $file has no build provenance from $GITHUB_REPOSITORY's $SIGNER_WORKFLOW at $revision ($ref)"
    log "verify: $file: provenance of $GITHUB_REPOSITORY $SIGNER_WORKFLOW@$ref, commit ${revision:0:12}"
  done
}

cmd_deploy() {
  need RAMPART_ARTIFACT_BUCKET RAMPART_SIGNING_PROFILE RAMPART_INGEST_FUNCTION RAMPART_API_FUNCTION
  cmd_verify # nothing is uploaded, signed or moved unless every byte is the gate's, attested
  local revision=$GITHUB_SHA
  mkdir -p "$STATE_DIR"
  : >"$STATE"
  local component fn signed_key previous new
  declare -A signed=()
  # Beside the unsigned packages: what verify-build compares a running function with (docs/gates.md).
  aws s3api put-object --bucket "$RAMPART_ARTIFACT_BUCKET" --key "unsigned/$revision/manifest.json" \
    --body "$DIST/manifest.json" --content-type application/json --query VersionId --output text >/dev/null
  log "manifest.json -> s3://$RAMPART_ARTIFACT_BUCKET/unsigned/$revision/manifest.json"
  # Sign both first: nothing moves unless both packages carry a valid signature.
  for component in ingest api; do
    signed[$component]=$(sign "$component" "$revision")
  done
  for component in ingest api; do
    fn=$(function_name "$component")
    log "$component: update-function-code $fn from s3://$RAMPART_ARTIFACT_BUCKET/${signed[$component]}"
    aws lambda update-function-code --function-name "$fn" --s3-bucket "$RAMPART_ARTIFACT_BUCKET" \
      --s3-key "${signed[$component]}" --output text --query LastUpdateStatus >/dev/null
    aws lambda wait function-updated-v2 --function-name "$fn"
    new=$(aws lambda publish-version --function-name "$fn" --description "$revision" \
      --query Version --output text)
    previous=$(aws lambda get-alias --function-name "$fn" --name "$ALIAS" --query FunctionVersion --output text)
    # Recorded before the move, so a failure right after it is still rolled back.
    printf '%s\t%s\t%s\n' "$fn" "$previous" "$new" >>"$STATE"
    aws lambda update-alias --function-name "$fn" --name "$ALIAS" --function-version "$new" \
      --query FunctionVersion --output text >/dev/null
    log "$component: $fn:$ALIAS moved $previous -> $new"
  done
}

cmd_smoke() {
  need RAMPART_API_URL RAMPART_API_KEY_SECRET_ID
  local key headers url status body
  # The secret is rampart keys' JSON document; the key that is current is what a client would send.
  key=$(aws secretsmanager get-secret-value --secret-id "$RAMPART_API_KEY_SECRET_ID" \
    --query SecretString --output text |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["current"]["value"])' 2>/dev/null) || key=
  [[ -n $key ]] || die "smoke: no current API key in $RAMPART_API_KEY_SECRET_ID"
  if [[ ${GITHUB_ACTIONS:-} == true ]]; then echo "::add-mask::$key"; fi
  # The key goes to curl in a private file, never on a command line (visible in the process list).
  headers=$(mktemp)
  body=$(mktemp)
  trap 'rm -f "$headers" "$body"' RETURN
  chmod 600 "$headers"
  printf 'x-api-key: %s\n' "$key" >"$headers"
  for path in /v1/health "/v1/events?limit=1"; do
    url="${RAMPART_API_URL%/}$path"
    status=$(curl --silent --show-error --max-time 20 --retry 3 --retry-all-errors --proto '=https,http' \
      -H "@$headers" -o "$body" -w '%{http_code}' "$url") || die "smoke: $url unreachable"
    [[ $status == 200 ]] || die "smoke: GET $path returned HTTP $status"
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$body" || die "smoke: GET $path: not JSON"
    log "smoke: GET $path -> 200"
  done
  # Without a key the API must refuse (API Gateway: 403).
  status=$(curl --silent --max-time 20 --proto '=https,http' -o /dev/null -w '%{http_code}' \
    "${RAMPART_API_URL%/}/v1/health") || die "smoke: API unreachable"
  [[ $status == 403 ]] || die "smoke: GET /v1/health without a key returned HTTP $status, expected 403"
  log "smoke: GET /v1/health without a key -> 403"
}

cmd_rollback() {
  [[ -s $STATE ]] || { log "rollback: no alias was moved, nothing to roll back"; return 0; }
  local fn previous new failed=0
  while IFS=$'\t' read -r fn previous new; do
    if aws lambda update-alias --function-name "$fn" --name "$ALIAS" --function-version "$previous" \
      --query FunctionVersion --output text >/dev/null; then
      log "rollback: $fn:$ALIAS moved back $new -> $previous"
    else
      log "rollback: FAILED to move $fn:$ALIAS back to $previous"
      failed=1
    fi
  done <"$STATE"
  return "$failed"
}

case "${1:-}" in
  verify) cmd_verify ;;
  deploy) cmd_deploy ;;
  smoke) cmd_smoke ;;
  rollback) cmd_rollback ;;
  *) die "usage: $0 verify|deploy|smoke|rollback" ;;
esac
