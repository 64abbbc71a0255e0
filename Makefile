# sandboxd build. GNU make; `make -j2` safe. See README.md.
#
#   make            bin/sbxlet, bin/sandboxd-o
#   make test       install missing deps, build, run every test (incl. check)
#   make check      unit tests under ASan+UBSan and under TSan
#   make up / down  start / stop the whole system on the embedded defaults
#   make bench      every benchmark, one report in bench/results/
#   make bench-http wrk against sbxlet and nginx, side by side

SHELL := /bin/bash
.DEFAULT_GOAL := all

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BIN ?= bin
CXX := g++
CC := gcc
OPT ?= -O2
# Debug info: full in the main build; line tables only (-g1) in the
# sanitizer builds, whose reports need no more and which compile ~30% faster.
DEBUG ?= -g
SAN ?=
PKGS := simdjson libcurl grpc++ protobuf sqlite3

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

# containerd's API, generated from Debian's .proto files and built once into
# a static library shared by every build flavour (it changes only with the
# protos; see proto/build.sh).
PROTO_DIR := build/proto
PROTO_LIB := $(PROTO_DIR)/libcontainerd_api.a

CPPFLAGS := -Isrc -I$(LLHTTP_INC) -I$(PROTO_DIR)/gen $(PKG_CFLAGS)
CXXFLAGS := -std=c++20 $(OPT) $(DEBUG) -Wall -Wextra -Werror $(SAN) -MMD -MP
# llhttp is generated C code from Debian; compiled as is, warnings not ours.
CFLAGS := $(OPT) $(DEBUG) $(SAN) -MMD -MP -w
LDFLAGS := $(SAN)
LDLIBS := $(PROTO_LIB) $(PKG_LIBS) -lcrypto -lpthread

LIB_SRCS := $(shell find src -name '*.cpp' -not -path 'src/cmd/*' | sort)
LIB_OBJS := $(LIB_SRCS:%.cpp=$(BUILD)/%.o)
LLHTTP_OBJS := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
# The fuzz harnesses (tests/fuzz/*_fuzz.cpp) are in the unit tests too: there
# they replay the corpus and every kept crasher (tests/fuzz/Corpus_test.cpp).
TEST_SRCS := $(shell find tests \( -name '*_test.cpp' -o -name '*_fuzz.cpp' \) -not -path 'tests/integration/*' | sort) tests/main.cpp
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
# Integration suites: real containerd, registry, runtimes (tests/env/up.sh).
INTEG_SRCS := $(shell find tests/integration -name '*_test.cpp' 2>/dev/null | sort) tests/main.cpp
INTEG_OBJS := $(INTEG_SRCS:%.cpp=$(BUILD)/%.o)

LIBSBX := $(BUILD)/libsbx.a
DAEMONS := $(BIN)/sbxlet $(BIN)/sandboxd-o
UNIT_TESTS := $(BUILD)/unit_tests
INTEG_TESTS := $(BUILD)/integration_tests

.SECONDARY:
.PHONY: chaos soak bench bench-density bench-scale bench-orch bench-probes all deps test unit integration check check-asan check-tsan sanitizer-builds up down bench-http bench-create clean format

all: $(DAEMONS)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(PROTO_LIB): proto/build.sh
	proto/build.sh $(PROTO_DIR)

# Objects may include generated headers: they wait for them. (proto/build.sh
# compiles in parallel itself, so little is lost by waiting.)
$(LIB_OBJS) $(TEST_OBJS) $(INTEG_OBJS) $(BUILD)/src/cmd/sbxlet.o $(BUILD)/src/cmd/sandboxd-o.o: | $(PROTO_LIB)

$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(CC) -I$(LLHTTP_INC) $(CFLAGS) -c $< -o $@

$(LIBSBX): $(LIB_OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: $(BUILD)/src/cmd/%.o $(LIBSBX) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $(BUILD)/src/cmd/$*.o $(LIBSBX) $(LDLIBS) -o $@

# Benchmark tools: tools/<name>.cpp → $(BIN)/<name>, linked like the daemons.
$(BIN)/probe-bench: $(BUILD)/tools/probe-bench.o $(LIBSBX) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $< $(LIBSBX) $(LDLIBS) -o $@
$(BUILD)/tools/probe-bench.o: | $(PROTO_LIB)
$(BIN)/loadgen: $(BUILD)/tools/loadgen.o $(LIBSBX) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $< $(LIBSBX) $(LDLIBS) -o $@
$(BUILD)/tools/loadgen.o: | $(PROTO_LIB)
$(BIN)/badinput: $(BUILD)/tools/badinput.o $(LIBSBX) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $< $(LIBSBX) $(LDLIBS) -o $@
$(BUILD)/tools/badinput.o: | $(PROTO_LIB)

$(UNIT_TESTS): $(TEST_OBJS) $(LIBSBX) $(PROTO_LIB)
	$(CXX) $(LDFLAGS) $(TEST_OBJS) $(LIBSBX) $(LDLIBS) -o $@

$(INTEG_TESTS): $(INTEG_OBJS) $(LIBSBX) $(PROTO_LIB)
	$(CXX) $(LDFLAGS) $(INTEG_OBJS) $(LIBSBX) $(LDLIBS) -o $@

deps:
	@tools/deps.sh

# `make fuzz`: libFuzzer builds with clang (tests/fuzz/fuzz.mk).
-include tests/fuzz/fuzz.mk

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TSAN_FLAGS := -fsanitize=thread

# `make test` first installs what is missing, then re-enters make so that
# pkg-config sees the freshly installed libraries. It builds the daemons and
# three flavours of the unit tests (plain, ASan+UBSan, TSan), then runs every
# suite and the daemon integration test (tools/run-tests.sh), ending with
# one "N passed, M failed" line.
test:
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	@$(MAKE) --no-print-directory -j$(JOBS) $(DAEMONS) $(UNIT_TESTS) $(INTEG_TESTS) $(BIN)/probe-bench $(BIN)/loadgen $(BIN)/badinput
	@$(MAKE) --no-print-directory -j$(JOBS) sanitizer-builds
	@tools/run-tests.sh

sanitizer-builds:
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin OPT=-O1 DEBUG=-g1 SAN="$(ASAN_FLAGS)" build/asan/unit_tests
	@$(MAKE) --no-print-directory BUILD=build/tsan BIN=build/tsan/bin OPT=-O1 DEBUG=-g1 SAN="$(TSAN_FLAGS)" build/tsan/unit_tests

unit: $(UNIT_TESTS)
	$(UNIT_TESTS)

# The integration suites against a private containerd + registry of their own.
integration: $(INTEG_TESTS) $(DAEMONS)
	tools/run-integration.sh $(INTEG_TESTS)

check: check-asan check-tsan

# Load held for SOAK (10m) at 80 % of the sustained maximum, per daemon,
# and idle connections (bench/soak.sh).
soak: $(DAEMONS) $(BIN)/loadgen
	bench/soak.sh

# Faults (tests/chaos/chaos.sh): kill -9 of sbxlet (CHAOS_ROUNDS, 10), of
# containerd and of sandboxd-o under load, a frozen node; then no leaks.
chaos: $(DAEMONS) $(BIN)/loadgen
	CHAOS_ROUNDS=$${CHAOS_ROUNDS:-10} tools/run-integration.sh tests/chaos/chaos.sh

check-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin OPT=-O1 DEBUG=-g1 SAN="$(ASAN_FLAGS)" build/asan/unit_tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/asan/unit_tests

check-tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan BIN=build/tsan/bin OPT=-O1 DEBUG=-g1 SAN="$(TSAN_FLAGS)" build/tsan/unit_tests
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build/tsan/unit_tests

up:
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@tools/up.sh

down:
	@tools/down.sh

# The readiness-probe runner alone: CPU of N tcp (and N/10 http) probes at a
# 1 s period against listeners of its own on loopback addresses.
# In a network namespace of its own (see tools/probe-bench.cpp); PROBE_ARGS
# adds flags (e.g. PROBE_ARGS="--slot-ms 0" for uncoalesced ticks).
bench-probes: $(BIN)/probe-bench
	unshare -n sh -c 'ip link set lo up && exec $(BIN)/probe-bench $(PROBE_ARGS) 1000 5000 10000'

bench-http: $(BIN)/sbxlet $(BIN)/loadgen
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	bench/http.sh

# Every benchmark below, one report: bench/results/<date>-<commit>.md
# (bench/all.sh; ONLY="http scale" runs some of them).
bench:
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	@$(MAKE) --no-print-directory -j$(JOBS) $(DAEMONS) $(BIN)/loadgen $(BIN)/probe-bench
	bench/all.sh

# Memory per sandbox: hollow (bytes of sbxlet RSS) and real runc (by holder).
bench-density: $(BIN)/sbxlet $(BIN)/loadgen
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	bench/density.sh

# The control plane on 100 hollow nodes with 10,000 sandboxes from loadgen.
bench-scale: $(DAEMONS) $(BIN)/loadgen
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	bench/scale.sh

# Create → running, runc and runsc, 20 sequential and 20 concurrent, beside
# bare `ctr run -d` in the same run; writes bench/results/create-*.md.
bench-create: $(BIN)/sbxlet
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	bench/create.sh

# Create → Running through sandboxd-o beside the same create directly on
# its sbxlet, in the same run; writes bench/results/orch-*.md.
bench-orch: $(DAEMONS)
	@tools/deps.sh --check 2>/dev/null || tools/deps.sh
	bench/orch.sh

format:
	clang-format -i $$(find src tests -name '*.h' -o -name '*.cpp')

clean:
	rm -rf build bin

# Keeps the generated containerd API (slow to rebuild).
clean-ours:
	find build -mindepth 1 -maxdepth 1 ! -name proto -exec rm -rf {} +
	rm -rf bin

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(INTEG_OBJS:.o=.d) $(LLHTTP_OBJS:.o=.d) $(BUILD)/src/cmd/sbxlet.d $(BUILD)/src/cmd/sandboxd-o.d $(BUILD)/tools/probe-bench.d $(BUILD)/tools/loadgen.d
