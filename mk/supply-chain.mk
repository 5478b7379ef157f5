# Supply chain (issues 13 and 15): verify what `make package` built, rebuild a commit and compare it with what
# the pipeline recorded and what runs in AWS. Included by the top-level Makefile. See docs/gates.md.

DIST_LAMBDA := dist/lambda

.PHONY: verify-artifacts

# The manifest is the one source of truth for the digests (SHA256SUMS is derived from it and checked against it).
# Standard library only, run by the runner's python3 with nothing installed: the plan, apply and deploy jobs check
# the gate's bytes with it before they assume a role. The commit: COMMIT=, else GitHub's GITHUB_SHA, else HEAD.
VERIFY_COMMIT = $(or $(COMMIT),$(GITHUB_SHA))
verify-artifacts: ## Check dist/lambda (zips, SBOMs, SHA256SUMS) against dist/lambda/manifest.json and the commit
	@$(PYTHON) scripts/build_manifest.py verify --dir $(DIST_LAMBDA) $(if $(VERIFY_COMMIT),--commit $(VERIFY_COMMIT))

# verify-build: for anyone, from scratch. VERSION: the commit; MANIFEST: the pipeline's manifest.json (a path,
# e.g. from `gh run download`, or an https URL). Compares with AWS when RAMPART_INGEST_FUNCTION /
# RAMPART_API_FUNCTION name the functions (and credentials are available). RDS_CA: the bundle the pipeline
# shipped (checked by sha256). VERIFY_BUILD_ARGS: more options (scripts/verify_build.py --help).
VERSION ?=
MANIFEST ?=
RDS_CA ?=
VERIFY_BUILD_ARGS ?=
.PHONY: verify-build
verify-build: install ## Rebuild VERSION=<sha> in a temp folder; compare with MANIFEST=<path|https URL> and AWS
	@if [ -z "$(VERSION)" ] || [ -z "$(MANIFEST)" ]; then \
	  echo "usage: make verify-build VERSION=<git sha> MANIFEST=<manifest.json path or https URL> [RDS_CA=file]"; \
	  exit 2; \
	fi
	@$(BIN)/python scripts/verify_build.py --version "$(VERSION)" --manifest "$(MANIFEST)" \
	  $(if $(RDS_CA),--rds-ca "$(RDS_CA)") $(VERIFY_BUILD_ARGS)

# The locks, re-resolved with the uv the dev lock pins (lock.yml runs this weekly and opens a pull request).
.PHONY: lock
lock: install ## Re-resolve requirements/*.txt with scripts/lock.sh (uv from the dev lock)
	@UV=$(abspath $(BIN)/uv) bash scripts/lock.sh

# IAM policy lint: parliament over every policy document of the state `make iac-emulate` applied and wrote to
# build/terraform/emulated-state.json. Applies nothing: fails (and says so) without a current state.
IAM_LINT_STATE ?= build/terraform/emulated-state.json
.PHONY: iam-lint
iam-lint: install ## parliament over every IAM policy in the emulator-applied state (after make iac-emulate)
	@$(BIN)/python scripts/iam_lint.py --state $(IAM_LINT_STATE)

TEST_STEPS += iam-lint

# Governance as code: .github/rulesets/*.json and .github/environments/*.json through the GitHub REST API.
# Dry run unless APPLY=1; the token comes from GITHUB_TOKEN or GH_TOKEN (administration: write on the repo).
GITHUB_REPO ?= $(GITHUB_REPOSITORY)
APPLY ?=
.PHONY: github-settings
github-settings: install ## Apply rulesets and environment protection (dry run unless APPLY=1; GITHUB_REPO=owner/name)
	@$(BIN)/python scripts/apply_github_settings.py --repo "$(GITHUB_REPO)" $(if $(filter 1,$(APPLY)),--apply)

# The SBOM gate, deep: every distribution in each zip is in its SBOM and vice versa, each hash is the one the
# lock pins and the wheel's files are the zip's (make verify-artifacts checks digests and names only).
.PHONY: sbom-check
sbom-check: package ## Each dist/lambda/<name>.cdx.json lists exactly the zip's distributions (hashes vs lock + wheels)
	@cache="build/lambda-wheels/$$(sha256sum requirements/lambda.txt | cut -c1-16)"; rc=0; \
	for name in ingest api; do \
	  $(BIN)/python scripts/sbom.py check $(DIST_LAMBDA)/$$name.zip $(DIST_LAMBDA)/$$name.cdx.json \
	    --wheels "$$cache" --lock requirements/lambda.txt || rc=1; \
	done; exit $$rc

# OpenSSF Scorecard's checks that need no GitHub API (scorecard.yml runs the real one on GitHub).
.PHONY: scorecard-offline
scorecard-offline: install ## Scorecard-style checks offline: pins, token permissions, dangerous workflows, rulesets
	@$(BIN)/python scripts/scorecard_offline.py

TEST_STEPS += scorecard-offline

# The audit canaries: a known-vulnerable pin must be flagged by the offline snapshot here and, on GitHub
# (GITHUB_ACTIONS=true), by the live OSV service. For ci.yml's audit job next to `make audit`.
.PHONY: audit-canary
audit-canary: install ## The audit must flag requests==2.19.0 (offline snapshot; live OSV on GitHub)
	@$(BIN)/pytest tests/gates/test_audit.py -q -p no:cacheprovider -rs -k "known_vulnerable_pin or live_canary"
