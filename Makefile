# keyfs: one non-recursive GNU Makefile.
#   make            build build/keyfs
#   make deps       apt-get install everything the build and tests need
#   make run        build and mount keyfs (local provider) at ./mnt
#   make check      unit tests, then integration tests
#   make SAN=address,undefined check    sanitizer build in its own folder
#   make lint | format | install | clean | fuzz | bench

PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

DEB_PKGS := build-essential pkg-config fuse3 libfuse3-dev libcurl4-openssl-dev \
	libssl-dev libjansson-dev python3 python3-pytest python3-cryptography attr curl util-linux \
	ca-certificates systemd valgrind strace clang libclang-rt-14-dev cppcheck \
	clang-format pmccabe vim rsync libnghttp2-dev python3-grpcio python3-protobuf
PKGS := fuse3 libcurl openssl jansson libnghttp2

comma := ,
SAN ?=
ifeq ($(SAN),)
B := build
else
B := build/san-$(subst $(comma),-,$(SAN))
endif
# A second tree of the same sources (e.g. while tests run from build/).
ifneq ($(BUILD_DIR),)
B := $(BUILD_DIR)
endif

CC ?= cc
# Computed only when compiling, so `make deps` works without pkg-config.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wvla -Wpointer-arith \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DFUSE_USE_VERSION=314 \
	-DKF_VERSION=\"$(VERSION)\" $(WARN) $(HARDEN) $(CFLAGS) \
	$(PKG_CFLAGS) $(INC) -MMD -MP
# cloud/ sees only cloud/ headers (it never reaches back into fs/); fs/
# sees cloud/; csi/ (the Kubernetes provider), the tests and tools see all.
INC = -Icloud -Ifs -Icsi
$(B)/cloud/%.o: INC := -Icloud
$(B)/fs/%.o: INC := -Icloud -Ifs
LDFLAGS_ALL = -pie -Wl,-z,relro -Wl,-z,now $(LDFLAGS)
ifneq ($(DEVELOPER),)
ALL_CFLAGS += -Werror
endif
ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS_ALL += -fsanitize=$(SAN)
# FORTIFY and the sanitizers disagree about some builtins.
HARDEN := -fstack-protector-strong -fPIE
endif

CLOUD_SRC := $(wildcard cloud/*.c cloud/*/*.c)
FS_SRC := $(filter-out fs/main.c,$(wildcard fs/*.c))
CSI_SRC := $(filter-out csi/main.c,$(wildcard csi/*.c))
UNIT_SRC := $(wildcard tests/unit/*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOLS := $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
CLOUD_OBJ := $(CLOUD_SRC:%.c=$(B)/%.o)
FS_OBJ := $(FS_SRC:%.c=$(B)/%.o)
CSI_OBJ := $(CSI_SRC:%.c=$(B)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)

.PHONY: all deps ensure-deps run check check-build unit integration lint \
	install clean fuzz fuzz-build bench stop valgrind format
.DEFAULT_GOAL := all

all: $(B)/keyfs $(B)/keyfs-csi-provider

# Install the Debian packages when something is missing (as root), or say
# exactly what to run.
ensure-deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq $(DEB_PKGS) >/dev/null || exit 1; \
		else \
			echo "missing Debian packages; run:" >&2; \
			echo "  sudo apt-get install -y $(DEB_PKGS)" >&2; exit 1; \
		fi; \
	fi
	@for p in $(PKGS); do pkg-config --exists $$p || { \
		echo "pkg-config cannot find $$p; run:" >&2; \
		echo "  sudo apt-get install -y $(DEB_PKGS)" >&2; exit 1; }; done

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PKGS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libkfcloud.a: $(CLOUD_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libkffs.a: $(FS_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libkfcsi.a: $(CSI_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/keyfs: $(B)/fs/main.o $(B)/libkffs.a $(B)/libkfcloud.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

# The Secrets Store CSI driver provider: the same cloud/ rooms and value
# cache (libkffs, libkfcloud) behind a gRPC server (csi/).
$(B)/keyfs-csi-provider: $(B)/csi/main.o $(B)/libkfcsi.a $(B)/libkffs.a \
		$(B)/libkfcloud.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

$(B)/kt: $(UNIT_OBJ) $(B)/libkfcsi.a $(B)/libkffs.a $(B)/libkfcloud.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

# Test drivers: every tests/tools/X.c becomes $(B)/tools/X.
$(B)/tools/%: $(B)/tests/tools/%.o $(B)/libkfcloud.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

$(B)/kfbench: $(B)/tests/bench/kfbench.o $(B)/libkfcloud.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

# Benchmarks (docs/performance.md): emulators on loopback, medians of
# repeated runs, ratios against baselines measured in the same run.
bench: ensure-deps
	@$(MAKE) --no-print-directory $(B)/keyfs $(B)/keyfs-csi-provider $(B)/kfbench
	KEYFS_BIN=$(CURDIR)/$(B)/keyfs KFBENCH=$(CURDIR)/$(B)/kfbench \
		KEYFS_CSI_BIN=$(CURDIR)/$(B)/keyfs-csi-provider \
		/usr/bin/python3 tests/bench/run_bench.py $(BENCH_ARGS)

MNT ?= $(CURDIR)/mnt
run: ensure-deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(MNT)
	@if grep -qs " $(MNT) " /proc/mounts; then \
		echo "keyfs is already mounted at $(MNT)"; \
	else \
		$(B)/keyfs -o providers=local,store=$(CURDIR)/.keyfs-store $(MNT) || exit 1; \
		echo "keyfs is mounted at $(MNT) (local provider, store $(CURDIR)/.keyfs-store)"; \
	fi
	@echo "Try:"
	@echo "  mkdir $(MNT)/local/ml-keys                 # a key ring"
	@echo "  mkdir $(MNT)/local/ml-keys/api             # a key (AES-256-GCM)"
	@echo "  echo -n sk-test > $(MNT)/local/ml-keys/api/openai"
	@echo "  cat $(MNT)/local/ml-keys/api/openai"
	@echo "  getfattr -d $(MNT)/local/ml-keys/api"
	@echo "Unmount with: fusermount3 -u $(MNT)   (or: make stop)"

stop:
	-fusermount3 -u $(MNT)

check: ensure-deps
	@$(MAKE) --no-print-directory check-build
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

check-build: $(B)/keyfs $(B)/keyfs-csi-provider $(B)/kt $(TOOLS) $(B)/kfbench

unit: $(B)/kt
	$(B)/kt

# The unit tests under valgrind: memory errors and definite leaks fail.
valgrind: $(B)/kt
	valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite $(B)/kt

PYTEST ?= /usr/bin/python3 -m pytest
integration: $(B)/keyfs $(B)/keyfs-csi-provider
	KEYFS_BIN=$(CURDIR)/$(B)/keyfs KEYFS_SAN=$(SAN) \
		KEYFS_CSI_BIN=$(CURDIR)/$(B)/keyfs-csi-provider \
		$(PYTEST) -q -p no:cacheprovider tests/integration

# Layering and hygiene rules (tests/lint.sh), cppcheck, and the tree
# formatted by .clang-format (`make format` rewrites it).
C_TREE = $(shell find cloud fs csi tests -name '*.[ch]' -not -path 'tests/fuzz/corpus/*' | sort)
lint:
	sh tests/lint.sh
	cppcheck --quiet --error-exitcode=1 --std=c11 \
		--suppress=missingIncludeSystem --inline-suppr -Icloud -Ifs -Icsi \
		cloud fs csi
	@clang-format --dry-run -Werror $(C_TREE) || { \
		echo "lint: not formatted by .clang-format; run make format" >&2; \
		exit 1; }
	@echo "lint: ok"

format:
	clang-format -i $(C_TREE)

install: $(B)/keyfs $(B)/keyfs-csi-provider
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/sbin \
		$(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)/lib/systemd/system
	install -m 0755 $(B)/keyfs $(DESTDIR)$(PREFIX)/bin/keyfs
	install -m 0755 $(B)/keyfs-csi-provider \
		$(DESTDIR)$(PREFIX)/bin/keyfs-csi-provider
	sed 's|@BINDIR@|$(PREFIX)/bin|g' mount-helpers/mount.keyfs \
		> $(DESTDIR)/sbin/mount.keyfs
	chmod 0755 $(DESTDIR)/sbin/mount.keyfs
	install -m 0644 docs/keyfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/keyfs.1
	install -m 0644 docs/keyfs-csi-provider.1 \
		$(DESTDIR)$(PREFIX)/share/man/man1/keyfs-csi-provider.1
	sed 's|@BINDIR@|$(PREFIX)/bin|g' mount-helpers/keyfs@.service \
		> $(DESTDIR)/lib/systemd/system/keyfs@.service

clean:
	rm -rf build

-include $(B)/tests/bench/kfbench.d

# libFuzzer targets (tests/fuzz/fuzz_*.c), built by clang with their own
# objects in build/fuzz/obj, each run for FUZZ_SECONDS on a copy of its
# seed corpus (tests/fuzz/run.sh); fails if any target crashes.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_B := build/fuzz
FUZZ_SAN := -fsanitize=fuzzer,address,undefined
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -DFUSE_USE_VERSION=314 \
	-DKF_VERSION=\"$(VERSION)\" $(WARN) -g -O1 -fno-omit-frame-pointer \
	-fno-sanitize-recover=all $(PKG_CFLAGS) $(INC) -MMD -MP
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_B)/%)
FUZZ_LIB_OBJ := $(CLOUD_SRC:%.c=$(FUZZ_B)/obj/%.o) $(FS_SRC:%.c=$(FUZZ_B)/obj/%.o) \
	$(CSI_SRC:%.c=$(FUZZ_B)/obj/%.o)

$(FUZZ_B)/obj/cloud/%.o: INC := -Icloud
$(FUZZ_B)/obj/fs/%.o: INC := -Icloud -Ifs
$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
		-c $< -o $@

$(FUZZ_B)/libkffuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_B)/libkffuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS) -lpthread

fuzz-build: $(FUZZ_TARGETS)

fuzz: ensure-deps
	@$(MAKE) --no-print-directory fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_B=$(FUZZ_B) sh tests/fuzz/run.sh \
		$(FUZZ_TARGETS:$(FUZZ_B)/%=%)

-include $(CLOUD_OBJ:.o=.d) $(FS_OBJ:.o=.d) $(CSI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) \
	$(B)/fs/main.d $(B)/csi/main.d \
	$(TOOL_SRC:%.c=$(B)/%.d) $(FUZZ_LIB_OBJ:.o=.d) \
	$(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_B)/obj/tests/fuzz/%.d)
