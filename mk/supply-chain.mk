# Supply chain (issues 13 and 15): verify what `make package` built, rebuild a commit and compare it with what
# the pipeline recorded and what runs in AWS. Included by the top-level Makefile. See docs/gates.md.

DIST_LAMBDA := dist/lambda

.PHONY: verify-artifacts

verify-artifacts: install ## Check dist/lambda (zips, SBOMs) against dist/lambda/manifest.json and HEAD
	@$(BIN)/python scripts/build_manifest.py verify --dir $(DIST_LAMBDA) $(if $(COMMIT),--commit $(COMMIT))

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
