# Shortcuts for developers who have make; the README's commands are the scripts themselves.
.PHONY: setup run test export
setup:
	bash scripts/setup.sh
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
# Before every commit: notebooks -> package, then strip outputs/metadata.
export:
	.venv/bin/nbdev_export && .venv/bin/nbdev_clean
