# switchboard top-level build.
#   make            build/hubd build/agentd build/hubctl (release flags)
#   make asan       the same under ASan+UBSan in build/asan (what the tests use)
#   make test       every test (unit + integration) against the sanitizer build
#   make deps       install missing Debian packages (idempotent)
#   make run        quick start: deps, a release build pinned to a local tunnel
#                   certificate, hubd + a local agentd, a token (tools/run.sh)
#   make install    hubd, hubctl, agentd, systemd units, sample configs
#                   (PREFIX=/usr/local, DESTDIR, SYSCONFDIR=/etc)
#   make deb HUB_PINS=sha256//...
#                   Debian packages switchboard-hub and switchboard-agent in
#                   build/deb (a release build in build/deb-build)
#   make fuzz       bounded libFuzzer runs of the decoders (clang)
#   make bench      hub vs the provider mock and nginx, table in bench/README.md
#   make bench-instr instructions a request per process (callgrind), bench/INSTR.md
#   make lint       cppcheck + clang-tidy

PKGS     := openssl libsodium libwebsockets msgpack hiredis libpq sqlite3 libcurl inih jansson
BUILD    ?= build
CC       ?= cc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT      ?= -O2 -g
SAN      ?=
# Release builds take the hub pins at build time (agentd cannot be told
# otherwise); TEST_BUILD=1 lets agentd read pins, a CA and host overrides
# from its INI.  The tests use the sanitizer build, which is a test build.
HUB_PINS ?=
TEST_BUILD ?= 0
# The release key's public half (hubctl release key) that agentd checks
# self-updates with, built in like the pins; empty: no self-updates.
# AGENT_VERSION: the version agentd reports (agent/ag_version.h).
RELEASE_PK ?=
AGENT_VERSION ?=
DEFS     := -D_GNU_SOURCE -DSWB_TEST_BUILD=$(TEST_BUILD) -DSWB_HUB_PINS='"$(HUB_PINS)"' \
	    -DSWB_RELEASE_PK='"$(RELEASE_PK)"' \
	    $(if $(AGENT_VERSION),-DSWB_AGENT_VERSION='"$(AGENT_VERSION)"')
CFLAGS   := -std=c17 $(WARN) $(OPT) $(SAN) $(DEFS) -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS   := $(PKG_LIBS) -lev -lpthread -lm
LDFLAGS  += $(SAN)

LIB_SRC   := $(wildcard lib/*.c)
HUB_SRC   := $(filter-out master/main.c,$(wildcard master/*.c admin/*.c child/*.c gateway/*.c tunnel/*.c billing/*.c router/*.c moderation/*.c shm/*.c xlate/*.c))
AGENT_SRC := $(filter-out agent/main.c,$(wildcard agent/*.c)) agent/platform/linux.c
CTL_SRC   := $(wildcard tools/hubctl*.c)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
TOOL_SRC  := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBSWB   := $(BUILD)/libswb.a
LIBHUB   := $(BUILD)/libhub.a
LIBAGENT := $(BUILD)/libagent.a
UNITS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOLS    := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))

.PHONY: all asan test unit integration deps run fuzz lint clean test-build bench bench-instr install deb

PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
DESTDIR    ?=
all: $(BUILD)/hubd $(BUILD)/agentd $(BUILD)/hubctl

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBSWB): $(call obj,$(LIB_SRC))
	@rm -f $@; ar rcs $@ $^
$(LIBHUB): $(call obj,$(HUB_SRC))
	@rm -f $@; ar rcs $@ $^
$(LIBAGENT): $(call obj,$(AGENT_SRC)) $(BUILD)/obj/gen/ag_ui_page.o
	@rm -f $@; ar rcs $@ $^
# agentd's local page, compiled in (agent/ag_ui.c).
$(BUILD)/gen/ag_ui_page.c: agent/ui/index.html tools/embed.sh
	@mkdir -p $(dir $@)
	sh tools/embed.sh ag_ui_page $< >$@
$(BUILD)/obj/gen/ag_ui_page.o: $(BUILD)/gen/ag_ui_page.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/hubd: $(call obj,master/main.c) $(LIBHUB) $(LIBSWB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/agentd: $(call obj,agent/main.c) $(LIBAGENT) $(LIBSWB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# hubctl release signs with child/hubkey's key file (libhub).
$(BUILD)/hubctl: $(call obj,$(CTL_SRC)) $(LIBHUB) $(LIBSWB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(LIBHUB) $(LIBAGENT) $(LIBSWB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/tools/%: $(call obj,tests/tools/%.c) $(LIBAGENT) $(LIBSWB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit-bin: all $(UNITS) $(TOOLS)
test-tools: all $(TOOLS)
.PHONY: unit-bin test-tools

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" TEST_BUILD=1 unit-bin

test-build:
	$(MAKE) BUILD=build/test TEST_BUILD=1 test-tools

# Installs what is missing first (a fresh Debian 12 machine), then builds
# in a sub-make, which reads pkg-config's flags after the install.
test:
	@tools/deps.sh
	$(MAKE) asan
	tests/run.sh build/asan

unit: asan
	tests/run.sh build/asan unit

integration: asan
	tests/run.sh build/asan integration

deps:
	@tools/deps.sh

run: deps
	tools/run.sh

install: all
	BUILD=$(BUILD) DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) \
	    UNITDIR=$(UNITDIR) tools/install.sh all

# Packages of a release build of their own: agentd takes the hub's pins at
# build time, so HUB_PINS is required (make deb HUB_PINS=sha256//A,sha256//B).
deb:
	@[ -n "$(HUB_PINS)" ] || { echo "make deb: set HUB_PINS=sha256//... (the hub's tunnel key pins, built into agentd)" >&2; exit 2; }
	@[ "$$(cat build/deb-build/.pins 2>/dev/null)" = "$(HUB_PINS)" ] || rm -rf build/deb-build
	$(MAKE) BUILD=build/deb-build HUB_PINS="$(HUB_PINS)" all
	@echo "$(HUB_PINS)" >build/deb-build/.pins
	BUILD=build/deb-build tools/mkdeb.sh build/deb

fuzz:
	@tests/fuzz/run.sh

bench: deps
	bench/run.sh

bench-instr: deps
	bench/instr.sh

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 --inline-suppr \
	    -I. -D_GNU_SOURCE -DSWB_TEST_BUILD=1 -DSWB_HUB_PINS='""' -DSWB_RELEASE_PK='""' -DLIBCURL_VERSION_NUM=0x075801 \
	    --suppress=unknownMacro --suppress=nullPointerRedundantCheck \
	    lib master admin child shm gateway tunnel billing router moderation xlate agent/*.c tools
	clang-tidy --quiet $(LIB_SRC) $(HUB_SRC) -- $(CFLAGS)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
