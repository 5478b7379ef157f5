# Terraform stack (iac/) and the Lambda packages it deploys: build, validate, scan, emulate.
# Included by the top-level Makefile.

IAC_DIR := iac
IAC_ROOTS := $(IAC_DIR)/envs
IAC_MODULES := $(sort $(wildcard $(IAC_DIR)/modules/*))
IAC_BUILD := build/terraform
IAC_TFRC := $(abspath $(IAC_BUILD))/terraformrc
TERRAFORM ?= terraform
# Module lock files are by-products of validation (only the root's lock file is committed).
# Override with TF_PROVIDER_MIRROR=/path/to/mirror (a directory holding registry.terraform.io/...).
TF_PROVIDER_MIRROR ?=
export TF_PROVIDER_MIRROR

.PHONY: package iac-tfrc iac-validate iac-scan iac-emulate

package: install ## Build dist/lambda/{ingest,api}.zip (python3.12, arm64, deterministic)
	@$(BIN)/python scripts/package_lambdas.py

iac-tfrc:
	@iac/tools/terraformrc.sh $(IAC_TFRC) >/dev/null
	@echo "==> [iac] provider mirror config: $(IAC_TFRC) ($$(grep -m1 'path' $(IAC_TFRC) | sed 's/.*= //'))"

iac-validate: iac-tfrc ## terraform fmt -check, then init (offline mirror) + validate every root and module
	@start=$$(date +%s); \
	echo "==> [iac-validate] terraform fmt -check -recursive $(IAC_DIR)"; \
	TF_CLI_CONFIG_FILE=$(IAC_TFRC) $(TERRAFORM) fmt -check -recursive -diff $(IAC_DIR); \
	for dir in $(IAC_ROOTS) $(IAC_MODULES); do \
	  echo "==> [iac-validate] init -backend=false + validate: $$dir"; \
	  TF_CLI_CONFIG_FILE=$(IAC_TFRC) TF_IN_AUTOMATION=1 $(TERRAFORM) -chdir=$$dir init -backend=false -input=false -no-color >$(IAC_BUILD)/init.log 2>&1 \
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
