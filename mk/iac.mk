# Terraform stack (iac/) and the Lambda packages it deploys: build, validate, scan, emulate.
# Included by the top-level Makefile.

IAC_DIR := iac
IAC_ROOTS := $(IAC_DIR)/envs
IAC_MODULES := $(sort $(wildcard $(IAC_DIR)/modules/*))
IAC_BUILD := build/terraform
IAC_TFRC := $(abspath $(IAC_BUILD))/terraformrc
TERRAFORM ?= terraform
# Module lock files are by-products of validation (only the root's lock file is committed; the root is
# initialised with -lockfile=readonly, so a provider whose hash differs from the committed lock fails).
# Override with TF_PROVIDER_MIRROR=/path/to/mirror (a directory holding registry.terraform.io/...).
TF_PROVIDER_MIRROR ?=
export TF_PROVIDER_MIRROR

.PHONY: package rds-ca iac-tfrc iac-validate iac-scan iac-emulate

# The RDS CA bundle the functions verify the database with (sslmode=verify-full). `make rds-ca` fetches it
# over TLS into build/rds-ca.pem; the packager ships it as rampart/certs/rds-ca.pem (or
# src/rampart/certs/rds-ca.pem when that exists and build/ has none). With RAMPART_REQUIRE_RDS_CA=1 (set by
# deploy.yml and terraform.yml's apply job) `make package` runs `rds-ca` first and fails without a bundle.
RDS_CA_URL := https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
RDS_CA_FILE := build/rds-ca.pem
RAMPART_REQUIRE_RDS_CA ?=
export RAMPART_REQUIRE_RDS_CA

package: install $(if $(filter 1,$(RAMPART_REQUIRE_RDS_CA)),rds-ca) ## dist/lambda/: {ingest,api}.zip (reproducible), .cdx.json SBOMs, manifest.json
	@$(BIN)/python scripts/package_lambdas.py

rds-ca: install ## Download the RDS CA bundle (https only, TLS >= 1.2), check it, write build/rds-ca.pem
	@mkdir -p $(dir $(RDS_CA_FILE))
	@echo "==> [rds-ca] curl --proto =https --tlsv1.2 --fail $(RDS_CA_URL)"
	@tmp=$$(mktemp $(RDS_CA_FILE).XXXXXX); trap 'rm -f "$$tmp"' EXIT; \
	curl --proto =https --tlsv1.2 --fail --silent --show-error --max-time 60 --retry 3 \
	  --output "$$tmp" "$(RDS_CA_URL)"; \
	$(BIN)/python scripts/package_lambdas.py --check-rds-ca "$$tmp"; \
	chmod 644 "$$tmp"; mv -f "$$tmp" $(RDS_CA_FILE); \
	echo "==> [rds-ca] $(RDS_CA_FILE): sha256 $$(sha256sum $(RDS_CA_FILE) | cut -c1-64)"

iac-tfrc:
	@iac/tools/terraformrc.sh $(IAC_TFRC) >/dev/null
	@echo "==> [iac] provider installation config: $(IAC_TFRC) ($$(grep -m1 -E '^ *(path|include)' $(IAC_TFRC) | sed 's/^ *//'))"

iac-validate: iac-tfrc ## terraform fmt -check, then init (mirror; registry on GitHub) + validate every root and module
	@start=$$(date +%s); \
	echo "==> [iac-validate] terraform fmt -check -recursive $(IAC_DIR)"; \
	TF_CLI_CONFIG_FILE=$(IAC_TFRC) $(TERRAFORM) fmt -check -recursive -diff $(IAC_DIR); \
	for dir in $(IAC_ROOTS) $(IAC_MODULES); do \
	  echo "==> [iac-validate] init -backend=false + validate: $$dir"; \
	  lock=; case $$dir in $(IAC_DIR)/modules/*) ;; *) [ ! -f $$dir/.terraform.lock.hcl ] || lock=-lockfile=readonly;; esac; \
	  TF_CLI_CONFIG_FILE=$(IAC_TFRC) TF_IN_AUTOMATION=1 $(TERRAFORM) -chdir=$$dir init -backend=false -input=false -no-color $$lock >$(IAC_BUILD)/init.log 2>&1 \
	    || { cat $(IAC_BUILD)/init.log; exit 1; }; \
	  TF_CLI_CONFIG_FILE=$(IAC_TFRC) $(TERRAFORM) -chdir=$$dir validate -no-color; \
	  case $$dir in $(IAC_DIR)/modules/*) rm -f $$dir/.terraform.lock.hcl;; esac; \
	done; \
	echo "==> [iac-validate] passed in $$(( $$(date +%s) - start ))s"

# The project's own checks (policies/checkov, or policies/ itself) join the scan when present.
IAC_POLICY_DIR = $(firstword $(foreach d,policies/checkov policies,$(if $(wildcard $(d)/*.py $(d)/*.yaml $(d)/*.yml),$(d))))

iac-scan: checkov-install ## checkov over iac/ (offline, built-in + project checks); zero failed checks
	@extra="$(if $(IAC_POLICY_DIR),--external-checks-dir $(IAC_POLICY_DIR))"; \
	echo "==> [iac-scan] $(CHECKOV) -d $(IAC_DIR) --skip-download --quiet --compact --framework terraform $$extra"; \
	start=$$(date +%s); \
	$(CHECKOV) -d $(IAC_DIR) --skip-download --quiet --compact --framework terraform $$extra; \
	echo "==> [iac-scan] zero failed checks ($$(( $$(date +%s) - start ))s)"

iac-emulate: install package iac-tfrc ## Apply the dev root against moto, assert with boto3, destroy
	@TF_CLI_CONFIG_FILE=$(IAC_TFRC) $(BIN)/pytest -m emulate tests/iac -p no:cacheprovider -s $(PYTEST_ARGS)

TEST_STEPS += iac-validate iac-scan iac-emulate
