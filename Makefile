# sw — shell-native coordination toolkit.  Plain make, no configure step.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions

CC      ?= cc
CFLAGS  ?= -O2 -g
# Names that become file names are at most 200 bytes (id.h), so paths are
# bounded by construction; gcc cannot see that through snprintf.
override CFLAGS += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation -Ilib
# Programs are linked fully statically: dynamic linking of SQLite, jansson
# and libbsd costs ~0.5 ms per exec, and even libc's dynamic loading costs
# more than a claim itself (tests/bench measures both).
STATIC  = -static
LDLIBS  += -lsqlite3 -ljansson -lbsd -lmd -lm -lpthread

# The sanitizer build links everything dynamically (ASan wants that).
SAN_CFLAGS = -O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_LDLIBS = -lsqlite3 -ljansson -lbsd -lm -lpthread -ldl

LIB_SRC  = $(sort $(wildcard lib/*.c))
LIB_HDR  = $(wildcard lib/*.h)
PROG_SRC = $(sort $(wildcard src/sw-*.c))
PROGS    = $(patsubst src/%.c,%,$(PROG_SRC))
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNITS    = $(patsubst tests/unit/%.c,%,$(UNIT_SRC))
MANS     = $(sort $(wildcard man/*.[157]))

all: $(addprefix bin/,$(PROGS))

build/%.o: lib/%.c $(LIB_HDR) | build
	$(CC) $(CFLAGS) -c -o $@ $<
build/san/%.o: lib/%.c $(LIB_HDR) | build/san
	$(CC) $(CFLAGS) $(SAN_CFLAGS) -c -o $@ $<
build/libsw.a: $(patsubst lib/%.c,build/%.o,$(LIB_SRC))
	$(AR) rcs $@ $^
build/san/libsw.a: $(patsubst lib/%.c,build/san/%.o,$(LIB_SRC))
	$(AR) rcs $@ $^
bin/%: src/%.c build/libsw.a $(LIB_HDR) | bin
	$(CC) $(CFLAGS) $(STATIC) $(LDFLAGS) -o $@ $< build/libsw.a $(LDLIBS)
build/san/bin/%: src/%.c build/san/libsw.a $(LIB_HDR) | build/san/bin
	$(CC) $(CFLAGS) $(SAN_CFLAGS) $(LDFLAGS) -o $@ $< build/san/libsw.a $(SAN_LDLIBS)
build/unit/%: tests/unit/%.c build/libsw.a $(LIB_HDR) | build/unit
	$(CC) $(CFLAGS) $(STATIC) $(LDFLAGS) -o $@ $< build/libsw.a $(LDLIBS)
build/san/unit/%: tests/unit/%.c build/san/libsw.a $(LIB_HDR) | build/san/unit
	$(CC) $(CFLAGS) $(SAN_CFLAGS) $(LDFLAGS) -o $@ $< build/san/libsw.a $(SAN_LDLIBS)
build/trivial: tests/bench/trivial.c | build
	$(CC) -O2 -o $@ $<
build/trivial-static: tests/bench/trivial.c | build
	$(CC) -O2 -static -o $@ $<
build/floor: tests/bench/floor.c | build
	$(CC) -O2 $(filter -W%,$(CFLAGS)) -o $@ $<

bin build build/san build/san/bin build/unit build/san/unit:
	mkdir -p $@

san: $(addprefix build/san/bin/,$(PROGS)) $(addprefix build/san/unit/,$(UNITS))
units: $(addprefix build/unit/,$(UNITS))

# check: unit tests and bats suites, then the same under ASan+UBSan, then
# mandoc -Tlint; tests/run prints the closing "N passed, N failed" line.
check: all units san
	@tests/run

# check-faults: the stall and I/O fault walks at every step, not a sample,
# sw-lease's stalled writers at every step, and the agents' SIGSTOP chaos
# with stops of up to 60 s (make check: 6 s)
# (long: run it before a release, not in CI)
check-faults: all
	SW_FAULTS_FULL=1 SW_BIN=$(CURDIR)/bin bats tests/chaos/stall.bats tests/chaos/faults.bats
	SW_FAULTS_FULL=1 SW_BIN=$(CURDIR)/bin bats -f 'stalled at any step|writer stalled' tests/lease.bats
	CHAOS_STOP_MAX=60 SW_BIN=$(CURDIR)/bin bats -f 'SIGSTOP' tests/chaos/agent.bats

# check-long: the issues' full-length runs: 8 sw-limit takers flat out
# for 30 s, on this host and (with SW_MH_A and SW_MH_B set, see
# tests/lab/lab) across two mounts; 4 --affinity agents over 20,000 items
# of 1,000 keys (make check: 2,000 of 100)
check-long: all
	SW_LIMIT_RATE_SECS=30 SW_BIN=$(CURDIR)/bin bats -f 'taking flat out' tests/limit.bats \
	    tests/multihost/limit.bats
	SW_AFF_ITEMS=20000 SW_BIN=$(CURDIR)/bin bats -f '95%' tests/affinity.bats

bench: all build/trivial build/trivial-static build/floor
	@tests/bench/run

demo: all
	@tests/demo.sh

deps:
	@tests/deps.sh

install: all install-completions
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(addprefix bin/,$(PROGS)) $(DESTDIR)$(BINDIR)
	for m in $(MANS); do s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s; done

# bash-completion loads completions/PROG.bash, installed as PROG, when PROG
# is first completed; each sources the shared part, sw-common.bash
# installed as sw-common, from its own directory.  zsh's compinit finds the
# shared helpers _sw_ws and _sw_names (#autoload) beside the _sw-PROG files.
install-completions:
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	for c in completions/*.bash; do b=$$(basename $$c .bash); \
	    install -m 644 $$c $(DESTDIR)$(BASHCOMPDIR)/$$b; done
	install -m 644 completions/_sw* $(DESTDIR)$(ZSHCOMPDIR)

# ---- fuzzing (tests/fuzz/, README "Fuzzing") ----
# Every target is built twice: with clang's libFuzzer against its own
# clang-built libsw (make fuzz), and with gcc against the ASan+UBSan libsw
# and tests/fuzz/replay.c (make fuzz-replay, which tests/run calls: the
# seed corpus and the kept regressions, in seconds).  The pending ones wait
# for a parser to be exported (see their files) and are not built yet.
FUZZ_TARGETS = agent argv_agent argv_claim argv_lease argv_metrics argv_shard argv_sim duration item item_file \
	journal lease_version name nodes number otlp place ring traceparent \
	limit_rate limit_tlist limit_version limit_argv_limit limit_argv_breaker
FUZZ_S  ?= 60
# more libFuzzer flags, e.g. FUZZ_ARGS="-fork=1 -ignore_crashes=1" to go on past a finding
FUZZ_ARGS ?=
FUZZ_CC ?= clang
FUZZ_FLAGS = -std=c17 -D_GNU_SOURCE -Wall -Wextra -Ilib -Itests/fuzz -O1 -g \
	-fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_MAXLEN_duration = 64
FUZZ_MAXLEN_traceparent = 128
FUZZ_MAXLEN_place = 256
FUZZ_MAXLEN_number = 512
FUZZ_MAXLEN_name = 512
FUZZ_MAXLEN_nodes = 1024
FUZZ_MAXLEN_journal = 2048
FUZZ_MAXLEN_agent = 4096
FUZZ_MAXLEN_item = 4096
FUZZ_MAXLEN_otlp = 8192
FUZZ_MAXLEN_limit_rate = 128
FUZZ_MAXLEN_limit_tlist = 2048

build/fuzz build/fuzz/bin build/fuzz-replay:
	mkdir -p $@
build/fuzz/%.o: lib/%.c $(LIB_HDR) | build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
build/fuzz/libsw.a: $(patsubst lib/%.c,build/fuzz/%.o,$(LIB_SRC))
	$(AR) rcs $@ $^
build/fuzz/bin/%: tests/fuzz/%.c tests/fuzz/fuzz.h tests/fuzz/argv.h tests/fuzz/scratch.h $(PROG_SRC) build/fuzz/libsw.a $(LIB_HDR) | build/fuzz/bin
	$(FUZZ_CC) $(FUZZ_FLAGS) -Werror -fsanitize=fuzzer,address,undefined -o $@ $< \
	    build/fuzz/libsw.a $(SAN_LDLIBS)
build/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay.c tests/fuzz/fuzz.h tests/fuzz/argv.h tests/fuzz/scratch.h $(PROG_SRC) build/san/libsw.a $(LIB_HDR) | build/fuzz-replay
	$(CC) $(CFLAGS) $(SAN_CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/replay.c build/san/libsw.a $(SAN_LDLIBS)

# fuzz: each target FUZZ_S seconds from its seeds; new inputs go to
# build/fuzz/corpus/<t>, findings to build/fuzz/artifacts/<t>/ (copy one
# into tests/fuzz/regress/<t>/ by hand once it is fixed).  make -j2 fuzz
# runs two at a time.
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))
fuzz-%: build/fuzz/bin/%
	@mkdir -p build/fuzz/corpus/$* build/fuzz/artifacts/$*
	$< -max_total_time=$(FUZZ_S) -max_len=$(or $(FUZZ_MAXLEN_$*),4096) -timeout=10 \
	    -rss_limit_mb=2048 -use_value_profile=1 -print_final_stats=1 $(FUZZ_ARGS) \
	    -artifact_prefix=build/fuzz/artifacts/$*/ \
	    build/fuzz/corpus/$* tests/fuzz/corpus/$* $(wildcard tests/fuzz/regress/$*)

# fuzz-replay: one TAP line a target; fails when any input fails.
fuzz-replay: $(addprefix build/fuzz-replay/,$(FUZZ_TARGETS))
	@tests/fuzz/replay-all build/fuzz-replay $(FUZZ_TARGETS)

clean:
	rm -rf bin build tests/tmp

.PHONY: all check check-faults check-long bench demo deps install install-completions clean san units fuzz fuzz-replay
.SECONDARY:
