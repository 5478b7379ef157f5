# Proofs that can fail (issue 12): controls as data, each control removed and its proofs required to fail; the
# threat model as code; mutation testing. Included by the top-level Makefile.

PROVE_ONLY ?=
PROVE_JOBS ?= 2
export PROVE_JOBS

.PHONY: prove-controls security-docs controls-check

prove-controls: install checkov-install ## Remove each control in a scratch copy (security/controls.yaml); its proofs must fail
	@$(BIN)/python scripts/prove_controls.py prove $(if $(PROVE_ONLY),--only $(PROVE_ONLY))

security-docs: install ## Regenerate SECURITY.md's controls table from security/controls.yaml
	@$(BIN)/python scripts/prove_controls.py docs

controls-check: install ## security/controls.yaml is valid, every mutation applies, SECURITY.md is up to date
	@$(BIN)/python scripts/prove_controls.py check
	@$(BIN)/python scripts/prove_controls.py docs --check

TEST_STEPS += prove-controls

.PHONY: threat-model
PYTM_IMAGES = $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/pytm/images))
threat-model: install ## Regenerate docs/threat-model.{dot,md} from security/threat_model.py (pytm); render the PNG (needs Graphviz)
	@$(BIN)/python security/threat_model.py
	@command -v dot >/dev/null || { echo "==> [threat-model] Graphviz missing (apt-get install graphviz): PNG not rendered"; exit 1; }
	@dot -Tpng -Gdpi=80 -Gimagepath=$(PYTM_IMAGES) docs/threat-model.dot -o docs/threat-model.png
	@echo "==> [threat-model] docs/threat-model.png"

.PHONY: mutation
MODULE ?=
mutation: install ## Mutation testing of the core (cosmic-ray) in a scratch copy; docs/mutation.md; fails below 85 % (MODULE=path: one module)
	@$(BIN)/python scripts/mutation.py $(if $(MODULE),--module $(MODULE))
