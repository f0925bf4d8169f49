# Two commands do all set-up on a fresh machine (Python 3.11+, Java 17, Maven):
#   make demo   - installs everything, then runs `streamlearn demo` on a local Kafka
#   make test   - installs everything, then runs the whole test suite and the linter
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint install kafka-jars chromium

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# Resolve the Kafka broker's jars from Maven Central once; later starts reuse the cached classpath.
kafka-jars: install
	$(BIN)/python -c "from streamlearn.kafka.local import resolve_classpath; resolve_classpath()"

demo: kafka-jars
	$(BIN)/streamlearn demo

# The dashboard's browser test drives Debian's chromium headless; installed once if missing.
chromium:
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium)

test: kafka-jars chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest
