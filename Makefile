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

# Resolve the jars of each pinned Kafka version from Maven Central once; later starts reuse the
# cached classpaths.
kafka-jars: install
	$(BIN)/python -c "from streamlearn.kafka.local import VERSIONS, resolve_classpath; \
	    [resolve_classpath(v) for v in VERSIONS]"

demo: kafka-jars
	$(BIN)/streamlearn demo

# The dashboard's browser test drives Debian's chromium headless; installed once if missing.
chromium:
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium)

# The whole suite on the default Kafka (3.9.1), then its core (marker `core`) on Kafka 4.x.
KAFKA_4 := 4.1.1

test: kafka-jars chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest
	STREAMLEARN_TEST_KAFKA_VERSION=$(KAFKA_4) $(BIN)/python -m pytest -m core
