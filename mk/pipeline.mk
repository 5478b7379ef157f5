# The path to production (terraform.yml on pull requests; deploy.yml on main): build once, plan with the plan
# role, apply exactly the sealed plan with the apply role, deploy the gate's bytes. Included by the Makefile.
# Every step of those workflows is one of these targets, so `make pipeline-rehearsal` runs them as written.

TF_ENV ?= prod
TF_ROOT := iac/envs
TF_BUILD := build/terraform
TF_PLAN := $(TF_BUILD)/$(TF_ENV).tfplan
TF_PLAN_JSON := $(TF_BUILD)/$(TF_ENV).plan.json
TF_PLAN_SUMMARY := $(TF_BUILD)/$(TF_ENV).plan.md
# The commit a plan belongs to: GitHub's, else the checkout's.
GIT_COMMIT = $(or $(GITHUB_SHA),$(shell git rev-parse HEAD))
TFPLAN := $(PYTHON) scripts/tfplan.py
TERRAFORM_RC = TF_CLI_CONFIG_FILE=$(IAC_TFRC) TF_IN_AUTOMATION=1

.PHONY: terraform-providers terraform-plan terraform-verify-plan terraform-apply pipeline-rehearsal

TF_INIT = terraform -chdir=$(TF_ROOT) init -input=false -no-color -lockfile=readonly \
	-backend-config=$(TF_ENV).s3.tfbackend -backend-config="bucket=$${TF_STATE_BUCKET:?TF_STATE_BUCKET is not set}" \
	-backend-config="region=$${AWS_REGION:?AWS_REGION is not set}"

# -refresh=false: the plan is computed from the state and the code and reads no live resource (refreshing the
# cursor key's secret version would read the secret); -lock=false: the plan role cannot write the lock. A plan
# that raced an apply is refused when applied (state lineage/serial, below, and Terraform's own check).
terraform-plan: iac-tfrc ## Plan $(TF_ENV) with the plan role; summary, sealed plan + manifest in build/terraform
	@mkdir -p $(TF_BUILD)
	@$(TERRAFORM_RC) $(TF_INIT) >$(TF_BUILD)/init.log 2>&1 || { cat $(TF_BUILD)/init.log; exit 1; }
	@echo "==> [terraform-plan] plan -refresh=false -lock=false ($(TF_ENV), commit $(GIT_COMMIT))"
	@$(TERRAFORM_RC) terraform -chdir=$(TF_ROOT) plan -input=false -no-color -refresh=false -lock=false \
	  -var-file=$(TF_ENV).tfvars -out=$(abspath $(TF_PLAN)) >$(TF_BUILD)/plan.log 2>&1 \
	  || { cat $(TF_BUILD)/plan.log; exit 1; }
	@$(TERRAFORM_RC) terraform -chdir=$(TF_ROOT) show -json $(abspath $(TF_PLAN)) >$(TF_PLAN_JSON)
	@$(TFPLAN) summary $(TF_PLAN_JSON) --out $(TF_PLAN_SUMMARY) --title "terraform plan ($(TF_ENV), $(GIT_COMMIT))"
	@$(TFPLAN) seal $(TF_PLAN) $(TF_PLAN_JSON) --commit $(GIT_COMMIT) --env $(TF_ENV)
	@if [ -n "$${GITHUB_STEP_SUMMARY:-}" ]; then cat $(TF_PLAN_SUMMARY) >>"$$GITHUB_STEP_SUMMARY"; fi
	@if [ -n "$${GITHUB_OUTPUT:-}" ]; then \
	  echo "has_changes=$$($(PYTHON) -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["has_changes"]).lower())' $(TF_PLAN).manifest.json)" >>"$$GITHUB_OUTPUT"; \
	fi

terraform-verify-plan: ## Before any credentials: the downloaded plan is the sealed one, of this commit and env
	@$(TFPLAN) verify $(TF_PLAN) --commit $(GIT_COMMIT) --env $(TF_ENV)

terraform-apply: iac-tfrc ## Apply exactly the sealed plan of this commit (refuses a changed, foreign or stale plan)
	@$(TFPLAN) verify $(TF_PLAN) --commit $(GIT_COMMIT) --env $(TF_ENV)
	@$(TERRAFORM_RC) $(TF_INIT) >$(TF_BUILD)/init.log 2>&1 || { cat $(TF_BUILD)/init.log; exit 1; }
	@$(TERRAFORM_RC) terraform -chdir=$(TF_ROOT) state pull >$(TF_BUILD)/current-state.json
	@$(TFPLAN) check-state $(TF_PLAN) $(TF_BUILD)/current-state.json
	@echo "==> [terraform-apply] apply $(TF_PLAN) (with the state lock)"
	@$(TERRAFORM_RC) terraform -chdir=$(TF_ROOT) apply -input=false -no-color $(abspath $(TF_PLAN))

# Every job of ci.yml, terraform.yml and deploy.yml in GitHub's order against the AWS emulator, with the trust
# matrix of who may assume which role (tests/pipeline/, docs/terraform.md). Inside `make test` the gate jobs'
# make targets already ran (TEST_STEPS before this one), so it reuses them: REHEARSAL_GATE=reuse.
REHEARSAL_GATE ?= run
REHEARSAL_REUSED_TARGETS ?=
pipeline-rehearsal: install ## Rehearse the workflows end to end against moto; print the trust matrix
	@REHEARSAL_GATE=$(REHEARSAL_GATE) REHEARSAL_REUSED_TARGETS="$(REHEARSAL_REUSED_TARGETS)" TF_CLI_CONFIG_FILE= \
	  $(BIN)/pytest tests/pipeline -m rehearsal -p no:cacheprovider -s $(PYTEST_ARGS)

pipeline-rehearsal-in-make-test:
	@$(MAKE) --no-print-directory pipeline-rehearsal REHEARSAL_GATE=reuse REHEARSAL_REUSED_TARGETS="$(TEST_STEPS)"

TEST_STEPS += pipeline-rehearsal-in-make-test

terraform-providers: iac-tfrc ## Install the root's providers (hash-pinned by the lock) before any credentials
	@$(TERRAFORM_RC) terraform -chdir=$(TF_ROOT) init -backend=false -input=false -no-color -lockfile=readonly >/dev/null
	@echo "==> [terraform-providers] $(TF_ROOT): providers installed from the lock (no credentials needed)"
