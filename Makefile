# Shortcuts; everything runs through uv (see README).
.PHONY: lint test bench

lint:
	uv run ruff check .
	uv run mypy
	uv run lint-imports

test:
	uv run pytest

# The ledger throughput benchmark against pgbench (PostgreSQL on 127.0.0.1; ~2 minutes).
bench:
	uv run python bench/ledger_bench.py $(BENCH_ARGS)
