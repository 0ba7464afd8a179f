# One-command entry points (see README.md). PYTHON defaults to the active interpreter.
PYTHON ?= python3

.PHONY: test install-test demo lint bench

# Install the package with its test dependencies, then run the whole test suite.
# torch is pinned first to the CPU build 2.13.0 (any other version pulls a multi-GB CUDA
# build); the trainers used as references in the tests come after it.
test: install-test
	$(PYTHON) -m pytest

# sinabs, norse and spikingjelly declare torchvision/torchaudio (which would pull a CUDA
# torch) but the cross-checks do not use them: they are installed without dependencies,
# followed by the few modules they do import.
install-test:
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -c ci-constraints.txt -e ".[test,trainers]"
	$(PYTHON) -m pip install --quiet -c ci-constraints.txt --no-deps \
		sinabs==3.1.3 norse==1.1.0 spikingjelly==2.0.0
	$(PYTHON) -m pip install --quiet -c ci-constraints.txt pbr loguru tqdm

demo:
	$(PYTHON) -m pip install --quiet -e .
	asyncsim compare models/digits/model.nir --input models/digits/test.npz

lint:
	$(PYTHON) -m ruff check asyncsim tests benchmarks models
	$(PYTHON) -m ruff format --check asyncsim tests benchmarks models

# Install, then every benchmark (~5 minutes on 2 cores, compile included): tables and JSON in
# benchmarks/results/, and the scaling figure benchmarks/results/scaling.svg.
bench:
	$(PYTHON) -m pip install --quiet -c ci-constraints.txt -e ".[plot]"
	$(PYTHON) benchmarks/bench_engine.py
	$(PYTHON) benchmarks/bench_conv.py
	$(PYTHON) benchmarks/bench_scaling.py
	$(PYTHON) benchmarks/plot_results.py
