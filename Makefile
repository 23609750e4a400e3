# Two commands for a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# Install the CPU torch wheel first, or pip pulls the newest CUDA build (several GB).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/ctxcomp demo

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check ctxcomp tests benchmarks examples
	$(VENV)/bin/mypy

# The full dev suites (tens of minutes on 2 CPU cores; not part of CI, which runs a smoke test).
BENCH_DATA ?= ../shared/data
BENCH_LINGUA_LIMIT ?= 20
BENCH_PEERS := none,truncate,random,embedding,gemfilter,langchain-embeddings-filter,llamaindex-sentence-optimizer
CTXCOMP := $(VENV)/bin/ctxcomp
bench: install
	$(CTXCOMP) bench nq --data $(BENCH_DATA)/nq20/dev.jsonl.gz --methods $(BENCH_PEERS) --ratio 4,10 --interleave --out benchmarks/results/nq.json --plot benchmarks/results/nq.png
	$(CTXCOMP) bench nq --data $(BENCH_DATA)/nq20/dev.jsonl.gz --methods $(BENCH_PEERS),llmlingua,longllmlingua --ratio 4,10 --limit $(BENCH_LINGUA_LIMIT) --interleave --out benchmarks/results/nq-all-methods.json --plot benchmarks/results/nq-all-methods.png
	$(CTXCOMP) bench needle --haystack $(BENCH_DATA)/haystack/PaulGrahamEssays --needles $(BENCH_DATA)/haystack/needles.json --lengths 2000,4000,8000,16000 --depths 10 --ratio 50 --methods $(BENCH_PEERS) --interleave --out benchmarks/results/needle.json --plot benchmarks/results/needle.png
	$(CTXCOMP) bench locomo --data $(BENCH_DATA)/locomo/dev.json --methods none,truncate,random,embedding,langchain-embeddings-filter --ratio 10 --limit 100 --interleave --out benchmarks/results/locomo.json --plot benchmarks/results/locomo.png
	$(CTXCOMP) bench cache --out benchmarks/results/cache.json
	$(PY) benchmarks/tokens_speed.py
	$(CTXCOMP) bench render

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
