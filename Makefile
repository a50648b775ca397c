# Shortcuts for scripts/bootstrap.sh, which needs nothing but Python and bash.
.PHONY: run test setup
run:
	scripts/bootstrap.sh run
test:
	scripts/bootstrap.sh test
setup:
	scripts/bootstrap.sh setup
