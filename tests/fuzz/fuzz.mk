# libFuzzer builds of the fuzz harnesses (tests/fuzz/<name>_fuzz.cpp), with
# clang. Included by the Makefile.
#
#   make fuzz                                   every target, FUZZ_SECONDS (60) each
#   make fuzz FUZZ_TARGETS="router json_reader" FUZZ_SECONDS=600
#   make build/fuzz/router                      build one, then run it by hand:
#     build/fuzz/router build/fuzz/corpus/router tests/fuzz/corpus/router
#   build/fuzz/router CRASH-FILE                replay one input
#
# Everything goes under build/fuzz/: the library sources (src/**, not
# src/cmd) and llhttp compiled again with ASan+UBSan and libFuzzer's coverage
# instrumentation into obj/, one binary per harness (the harness, the
# libFuzzer entry point and the library), the working corpora corpus/<name>
# (seeded from tests/fuzz/corpus/<name>, which is never written) and what
# libFuzzer finds in crashes/<name>/ (tests/fuzz/run.sh runs them). Keep a
# crasher by copying it to tests/fuzz/crashers/<name>/: the unit tests then
# replay it.
#
# The containerd API library is the g++-built one (ABI-compatible with
# clang's libstdc++ code; not instrumented: it holds no parser of ours).

FUZZ_DIR := build/fuzz
FUZZ_CXX ?= clang++
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ALL := $(sort $(patsubst tests/fuzz/%_fuzz.cpp,%,$(wildcard tests/fuzz/*_fuzz.cpp)))
FUZZ_TARGETS ?= $(FUZZ_ALL)

# Every UBSan finding is fatal, so libFuzzer sees it as a crash.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -Wall -Wextra -Werror $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
# llhttp is generated C code from Debian; compiled as is, warnings not ours.
FUZZ_CFLAGS := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -w
FUZZ_LDFLAGS := $(FUZZ_SAN) -fsanitize=fuzzer

FUZZ_LIB := $(FUZZ_DIR)/libsbx.a
FUZZ_LIB_OBJS := $(LIB_SRCS:%.cpp=$(FUZZ_DIR)/obj/%.o)
FUZZ_LLHTTP_OBJS := $(LLHTTP_OBJS:$(BUILD)/llhttp/%=$(FUZZ_DIR)/obj/llhttp/%)
FUZZ_MAIN_OBJ := $(FUZZ_DIR)/obj/tests/fuzz/LibFuzzerMain.o
FUZZ_HARNESS_OBJS := $(FUZZ_ALL:%=$(FUZZ_DIR)/obj/tests/fuzz/%_fuzz.o)
FUZZ_BINS := $(FUZZ_ALL:%=$(FUZZ_DIR)/%)

.PHONY: fuzz fuzz-build

# Builds the selected targets, then runs them one after another; fails when
# one crashed (or did not start).
fuzz: fuzz-build
	FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

$(FUZZ_DIR)/obj/%.o: %.cpp | $(PROTO_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(CPPFLAGS) $(FUZZ_CXXFLAGS) -c $< -o $@

$(FUZZ_DIR)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) -I$(LLHTTP_INC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS) $(FUZZ_LLHTTP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/%_fuzz.o $(FUZZ_MAIN_OBJ) $(FUZZ_LIB) $(PROTO_LIB)
	$(FUZZ_CXX) $(FUZZ_LDFLAGS) $< $(FUZZ_MAIN_OBJ) $(FUZZ_LIB) $(LDLIBS) -o $@

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_LLHTTP_OBJS:.o=.d) $(FUZZ_MAIN_OBJ:.o=.d) $(FUZZ_HARNESS_OBJS:.o=.d)
