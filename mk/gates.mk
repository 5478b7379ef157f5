# The security gates: policy-as-code, workflow hardening, bandit, secrets, pip-audit, pre-commit, deploy.
# Included by the top-level Makefile. Every step of .github/workflows/*.yml is one of these targets (or a
# target of the top-level Makefile / mk/iac.mk), so a laptop runs exactly what CI runs: `make gate`.

REPORTS := build/reports
POLICIES := policies/checkov
# Rampart's own checks only (CKV_RAMPART_<n>, CKV2_RAMPART_<n>); see policies/README.md.
RAMPART_CHECKS := CKV_RAMPART_*,CKV2_RAMPART_*
CHECKOV_FLAGS := --skip-download --compact --external-checks-dir $(POLICIES)
# Offline: the loopback OSV endpoint serves this snapshot. On GitHub (GITHUB_ACTIONS=true): api.osv.dev.
ADVISORY_DB ?= $(firstword $(wildcard ../shared/advisory-db/vulns))
AUDIT_LOCKS := requirements/lambda.txt requirements/dev.txt requirements/checkov.txt

.PHONY: checkov checkov-actions policies-check bandit secrets secrets-baseline zizmor audit precommit gate \
	verify-provenance deploy-functions smoke-test rollback

$(REPORTS):
	@mkdir -p $@

checkov: checkov-install | $(REPORTS) ## checkov: iac/ + .github/, built-in and Rampart checks; SARIF in build/reports
	@echo "==> [checkov] terraform + github_actions, built-in and $(POLICIES) checks"
	@rc=0; $(CHECKOV) $(CHECKOV_FLAGS) --quiet -d iac -d .github --framework terraform github_actions \
	  -o cli -o sarif --output-file-path console,$(REPORTS) || rc=$$?; \
	mv -f $(REPORTS)/results_sarif.sarif $(REPORTS)/checkov.sarif 2>/dev/null || true; \
	echo "==> [checkov] SARIF: $(REPORTS)/checkov.sarif"; exit $$rc

checkov-actions: checkov-install ## checkov github_actions framework over .github/ (built-in + Rampart checks)
	@echo "==> [checkov-actions] $(CHECKOV) --framework github_actions -d .github"
	@$(CHECKOV) $(CHECKOV_FLAGS) --quiet -d .github --framework github_actions

policies-check: checkov-install ## Only the Rampart policies, over iac/ and .github/ (what policies/README.md lists)
	@echo "==> [policies-check] $(RAMPART_CHECKS) over iac/ and .github/"
	@$(CHECKOV) $(CHECKOV_FLAGS) --quiet -d iac -d .github --framework terraform github_actions \
	  --check '$(RAMPART_CHECKS)'

bandit: install | $(REPORTS) ## bandit over src/ (SARIF in build/reports/bandit.sarif)
	@echo "==> [bandit] bandit -r src"
	@rc=0; $(BIN)/bandit -q -r src -f sarif -o $(REPORTS)/bandit.sarif || rc=$$?; \
	$(BIN)/bandit -q -r src -f screen || rc=$$?; \
	echo "==> [bandit] SARIF: $(REPORTS)/bandit.sarif"; exit $$rc

# detect-secrets over every tracked file; a finding not in the committed, audited baseline fails (and so
# does a baseline entry not audited as a false positive). The locks are excluded: sha256 pins are
# high-entropy by design; so is docs/mutation-results.json (generated: each core module's sha256, counts, lines of
# src/). Each baseline entry's reason is listed in docs/gates.md.
SECRETS_EXCLUDE := ^(requirements/.*\.txt|docs/mutation-results\.json)$$
secrets: install ## detect-secrets against .secrets.baseline (new secrets fail)
	@$(BIN)/python scripts/gate.py secrets

secrets-baseline: install ## Regenerate .secrets.baseline; then audit it: detect-secrets audit .secrets.baseline
	@$(BIN)/detect-secrets scan --exclude-files '$(SECRETS_EXCLUDE)' > .secrets.baseline

# Offline here (the GitHub API is out of reach); online on GitHub (GITHUB_ACTIONS=true), where the audits that need
# the API run too: impostor commits, version comments that do not match the pinned commit, known-vulnerable
# actions. Online needs GH_TOKEN (ci.yml passes the job's read-only token) and fails without it, never falls back.
zizmor: install ## zizmor over the workflows and dependabot.yml: zero findings (offline here, online on GitHub)
	@if [ "$${GITHUB_ACTIONS:-}" = "true" ]; then \
	  test -n "$${GH_TOKEN:-}" || { echo "==> [zizmor] FAIL: online audits need GH_TOKEN (a read-only token)"; exit 2; }; \
	  echo "==> [zizmor] zizmor (online audits) .github/workflows .github/dependabot.yml"; \
	  $(BIN)/zizmor --quiet .github/workflows .github/dependabot.yml; \
	else \
	  echo "==> [zizmor] zizmor --offline .github/workflows .github/dependabot.yml"; \
	  $(BIN)/zizmor --offline --quiet .github/workflows .github/dependabot.yml; \
	fi

audit: install ## pip-audit --strict on the runtime, dev and checkov locks (offline: loopback OSV endpoint)
	@if [ "$${GITHUB_ACTIONS:-}" = "true" ]; then \
	  $(BIN)/python scripts/osv_server.py audit --live $(addprefix -r ,$(AUDIT_LOCKS)); \
	else \
	  $(BIN)/python scripts/osv_server.py audit --advisories "$(or $(ADVISORY_DB),../shared/advisory-db/vulns)" \
	    $(addprefix -r ,$(AUDIT_LOCKS)); \
	fi

precommit: install checkov-install ## pre-commit run --all-files (the hooks developers run on commit)
	@start=$$(date +%s); \
	$(BIN)/pre-commit run --all-files --show-diff-on-failure; \
	echo "==> [precommit] all hooks passed in $$(( $$(date +%s) - start ))s"

gate: install ## Run exactly what the pull-request gate (ci.yml) runs; one summary table at the end
	@$(BIN)/python scripts/gate.py

# ---- deploy (deploy.yml); need AWS credentials, see scripts/deploy_functions.sh for the variables ----
verify-provenance: ## dist/lambda is the gate's: its manifest, and each file's build provenance (gh; no AWS)
	@scripts/deploy_functions.sh verify

deploy-functions: ## Verify provenance, then sign both zips (AWS Signer), update code, publish versions, move alias `live`
	@scripts/deploy_functions.sh deploy

smoke-test: ## Call the API with a key from Secrets Manager (and check that no key means 403)
	@scripts/deploy_functions.sh smoke

rollback: ## Move alias `live` back to the versions recorded by deploy-functions
	@scripts/deploy_functions.sh rollback

# terraform-plan, terraform-apply and the other pipeline targets: mk/pipeline.mk.

TEST_STEPS += checkov-actions bandit secrets zizmor audit precommit
