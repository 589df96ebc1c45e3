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
SAN_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
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

bin build build/san build/san/bin build/unit build/san/unit:
	mkdir -p $@

san: $(addprefix build/san/bin/,$(PROGS)) $(addprefix build/san/unit/,$(UNITS))
units: $(addprefix build/unit/,$(UNITS))

# check: unit tests and bats suites, then the same under ASan+UBSan, then
# mandoc -Tlint; tests/run prints the closing "N passed, N failed" line.
check: all units san
	@tests/run

# check-faults: the stall and I/O fault walks at every step, not a sample
# (long: run it before a release, not in CI)
check-faults: all
	SW_FAULTS_FULL=1 SW_BIN=$(CURDIR)/bin bats tests/chaos/stall.bats tests/chaos/faults.bats

bench: all build/trivial build/trivial-static
	@tests/bench/run

demo: all
	@tests/demo.sh

deps:
	@tests/deps.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 755 $(addprefix bin/,$(PROGS)) $(DESTDIR)$(BINDIR)
	for m in $(MANS); do s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s; done
	for c in completions/*.bash; do b=$$(basename $$c .bash); \
	    install -m 644 $$c $(DESTDIR)$(BASHCOMPDIR)/$$b; done
	install -m 644 completions/_sw* $(DESTDIR)$(ZSHCOMPDIR)

clean:
	rm -rf bin build tests/tmp

.PHONY: all check check-faults bench demo deps install clean san units
.SECONDARY:
