# The README's two commands: `make run` (set up + the pipeline) and `make test` (set up + every test).
VENV ?= .venv
PROFILE ?= full
OUT ?= artifacts

.PHONY: setup run test export clean-nbs
setup:
	bash scripts/setup.sh

run: setup
	$(VENV)/bin/kws-pipeline --profile $(PROFILE) --out $(OUT)

test: setup
	bash scripts/test.sh

# Before every commit: notebooks -> package, then strip outputs/metadata.
export:
	$(VENV)/bin/nbdev-export && $(VENV)/bin/nbdev-clean
