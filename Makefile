# ingot build. One entry point for the two promises of the README:
#   make run   installs what is missing, builds, starts `ingot serve` on 127.0.0.1:8080
#   make test  installs what is missing, builds with ASan+UBSan, runs every suite
# Variants: BUILD=release (default for run), BUILD=asan (tests), BUILD=fuzz (clang libFuzzer).

BUILD ?= release
OUT   ?= build/$(BUILD)
# `make test TEST_OUT=build/asan-mine` keeps a private test build (for parallel work trees).
TEST_OUT ?= build/asan
PKGS  := libmicrohttpd jansson sqlite3 libcurl libsodium libzstd snappy zlib liblz4 libbrotlidec
CC    ?= gcc
ifeq ($(origin CC),default)
  CC := gcc
endif

WARN  := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
         -Wpointer-arith -Wvla -Wimplicit-fallthrough -Wundef
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -DING_WITH_BROTLI -Isrc -MMD -MP $(WARN) $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS) -lm -pthread

ifeq ($(BUILD),release)
  CFLAGS := $(CFLAGS_BASE) -O2 -g -march=x86-64-v2
else ifeq ($(BUILD),debug)
  CFLAGS := $(CFLAGS_BASE) -O0 -g3
else ifeq ($(BUILD),asan)
  SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  CFLAGS := $(CFLAGS_BASE) -O1 -g $(SAN)
  LDFLAGS += $(SAN)
else ifeq ($(BUILD),fuzz)
  CC := clang
  WARN := -Wall -Wextra -Werror
  CFLAGS := -std=c17 -D_GNU_SOURCE -DING_WITH_BROTLI -Isrc -MMD -MP $(WARN) $(PKG_CFLAGS) -O1 -g \
            -fsanitize=fuzzer-no-link,address,undefined -DING_FUZZING=1
  LDFLAGS += -fsanitize=fuzzer,address,undefined
else
  $(error unknown BUILD=$(BUILD))
endif

SRCS      := $(sort $(wildcard src/*/*.c))
OBJS      := $(SRCS:%.c=$(OUT)/%.o)
MAIN_OBJ  := $(OUT)/src/main.o
LIB       := $(OUT)/libingot.a
BIN       := $(OUT)/ingot
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(OUT)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(OUT)/fuzz/%)
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=$(OUT)/fuzz/replay_%)

PORT ?= 8080
DATA ?= ./data

.PHONY: all deps build run test unit-tests fuzz fuzz-replay-bins bench clean

all: $(BIN)

deps:
	@tools/deps.sh

build: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD) all

run: deps
	@$(MAKE) --no-print-directory BUILD=release all
	./build/release/ingot serve --data $(DATA) --listen 127.0.0.1:$(PORT)

# The README's test command: everything, under ASan+UBSan, ending with one "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory BUILD=asan OUT=$(TEST_OUT) all unit-tests fuzz-replay-bins
	@tools/run-tests.sh $(TEST_OUT)

unit-tests: $(UNIT_BINS)
fuzz-replay-bins: $(REPLAY_BINS)

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-bins

.PHONY: fuzz-bins
fuzz-bins: $(FUZZ_BINS)

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(filter-out $(MAIN_OBJ),$(OBJS))
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(shell pkg-config --libs cmocka)

# libFuzzer targets (clang) and, for every build, a replay driver that runs the committed corpus.
$(OUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(OUT)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay_main.c $(LIB) $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory BUILD=release all
	@bench/run

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(MAIN_OBJ:.o=.d)
