# Makefile — the two commands of the README's quick start, and a few conveniences.
#   make demo   installs what is missing, builds, trains the default network on Fashion-MNIST
#   make test   installs what is missing (test oracles too), builds, runs the whole test suite
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all build demo test deps deps-test clean bench

all: build

deps:
	@scripts/install-deps.sh

deps-test:
	@scripts/install-deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/cnn train

test: deps-test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure --timeout 900

bench: build
	bench/run

clean:
	rm -rf $(BUILD)
