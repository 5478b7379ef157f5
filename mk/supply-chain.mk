# Supply chain (issues 13 and 15): verify what `make package` built, rebuild a commit and compare it with what
# the pipeline recorded and what runs in AWS. Included by the top-level Makefile. See docs/gates.md.

DIST_LAMBDA := dist/lambda

.PHONY: verify-artifacts

verify-artifacts: install ## Check dist/lambda (zips, SBOMs) against dist/lambda/manifest.json and HEAD
	@$(BIN)/python scripts/build_manifest.py verify --dir $(DIST_LAMBDA) $(if $(COMMIT),--commit $(COMMIT))
