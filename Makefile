# qvsa — build, test and demo. See README.md.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc

PKGS     := yaml-0.1 libguestfs libvirt zlib libcrypto libssl libarchive libxml-2.0 libisal json-c
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wvla -Wformat=2 -Werror
CPPFLAGS += -D_GNU_SOURCE -Ibuilder -Ibuilder/util -Ibuilder/write -Ibuilder/verify -Ibuilder/verify/platforms -Ibuilder/release -Ibuilder/recipe -Ibuilder/base -Ibuilder/base/debian -Ibuilder/assemble -Ibuilder/image -DQVSA_DATADIR='"$(PREFIX)/share/qvsa"'
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

B        := build
# Stamped build dates come from the last commit, never the clock.
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
LIB_SRC  := $(filter-out builder/main.c,$(wildcard builder/*.c builder/util/*.c builder/write/*.c builder/verify/*.c builder/verify/platforms/*.c builder/release/*.c builder/recipe/*.c builder/base/*.c builder/base/debian/*.c builder/assemble/*.c builder/image/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
MAIN_OBJ := $(B)/builder/main.o
AGENT_DIR := templates/bootstrap-agent
AGENT    := $(AGENT_DIR)/rootfs/usr/sbin/qvsa-agent
AGENT_SRC := $(wildcard $(AGENT_DIR)/src/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)
AGENT_LIB_SRC := $(filter-out $(AGENT_DIR)/src/main.c,$(AGENT_SRC))

# Debian packages qvsa needs to build, test and run (installed by `make deps`).
DEB_PKGS := build-essential pkg-config libyaml-dev libguestfs-dev libvirt-dev zlib1g-dev \
	libssl-dev libcriterion-dev libarchive-dev libvirt-daemon-system \
	libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils busybox-static extlinux \
	syslinux-common linux-image-amd64 supermin libguestfs-tools kmod systemd-boot-efi ovmf libxml2-utils grub-efi-amd64-bin \
	libxml2-dev libmbedtls-dev genisoimage ca-certificates openssl grub-pc-bin mtools e2fsprogs fdisk \
	time pigz python3 libisal-dev libjson-c-dev debhelper mmdebstrap virt-v2v nbdkit libnbd-bin uidmap

.PHONY: integration-debian all deps demo check unit unit-san integration install clean bench deb fuzz recipes-bad
all: $(B)/qvsa $(AGENT)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $$(pkg-config --cflags $(PKGS)) -MMD -MP -c $< -o $@

$(B)/qvsa: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $$(pkg-config --libs $(PKGS)) -lpthread

# The bootstrap agent runs inside the appliance: static, no sanitizers; TLS
# through mbedTLS (Debian's static libraries).
AGENT_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto
$(AGENT): $(AGENT_SRC) $(wildcard $(AGENT_DIR)/src/*.h)
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -Os $(WARN) -static -s -o $@.tmp $(AGENT_SRC) $(AGENT_LIBS) && mv $@.tmp $@

$(B)/unit-tests: $(UNIT_OBJ) $(LIB_OBJ) $(AGENT_LIB_SRC:%.c=$(B)/%.o)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $$(pkg-config --libs $(PKGS) criterion) $(AGENT_LIBS) -lpthread

$(B)/tests/unit/%.o: CPPFLAGS += -I$(AGENT_DIR)/src -DQVSA_SRCDIR='"$(CURDIR)"'

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all $(words $(DEB_PKGS)) packages present"; fi

# Under SANITIZE=1 the unit tier runs with leak checking (Criterion's own
# runner allocation suppressed); the integration tier keeps ASan/UBSan errors
# fatal but not leak reports, which libvirt's and libguestfs's threads make at exit.
unit: $(B)/unit-tests
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(B)/unit-tests

# The bad-recipe corpus: each case's lint says exactly where, and leaks nothing.
recipes-bad: all
	tests/recipes/run-bad.sh

integration: all
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 tests/integration/run.sh

# The unit tier twice: as shipped, then under ASan/UBSan with leak checking
# (objects in $(B)/san, so the two builds never mix).
unit-san:
	$(MAKE) unit SANITIZE=1 B=$(B)/san

check: deps
	$(MAKE) all $(B)/unit-tests
	$(MAKE) unit
	$(MAKE) unit-san
	$(MAKE) recipes-bad
	$(MAKE) integration
	$(MAKE) integration-debian

# The debian base's tier (~10 minutes under TCG): mmdebstrap, a cached
# rebuild, two boots through real cloud-init, libguestfs's inspection and
# virt-v2v. Part of check; runnable alone.
integration-debian: all
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 tests/integration/debian.sh

# The main job on the embedded default: build the example recipe, verify it
# under libvirt (embedded QEMU driver, no daemon), say where the artifacts are.
# DEMO_TARGETS picks targets (default kvm, ~2 min under TCG); DEMO_TARGETS=all
# builds and verifies every target of the recipe (~15 min under TCG).
DEMO_TARGETS ?= kvm
DEMO_SEL := $(if $(filter all,$(DEMO_TARGETS)),,$(addprefix --target ,$(DEMO_TARGETS)))
demo: deps
	$(MAKE) all
	$(B)/qvsa build recipes/qvsa.yaml --out out -j 2 $(DEMO_SEL)
	$(B)/qvsa verify recipes/qvsa.yaml --out out $(DEMO_SEL)
	@echo "artifacts: $(CURDIR)/out/$$(cat VERSION)/ (manifest.json, SHA256SUMS)"

# qvsa's writers against the script they replace, on one disk, alternating
# rounds; then the example recipe's build and verify --all (docs/bench.md).
# Never part of check. BENCH_QUICK=1: ~100 MB payload; BENCH_VERIFY=0: no boots.
bench: all
	bench/bench.sh

# The Debian package (debian/), built from a copy of the tracked files so
# that the package build's clean step never touches this tree or out/.
DEB_VERSION := $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
deb:
	rm -rf $(B)/deb && mkdir -p $(B)/deb/src
	git ls-files -co --exclude-standard | grep -v '^bench/results/' | tar -cf - -T - | tar -xf - -C $(B)/deb/src
	cd $(B)/deb/src && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 || { tail -30 ../build.log; exit 1; }
	@ls $(B)/deb/qvsa_$(DEB_VERSION)_*.deb

# The recipe parser under libFuzzer (clang; ASan + UBSan) for FUZZ_SECONDS,
# seeded from fuzz/corpus and tests/recipes; findings land in build/fuzz-*.
# Never part of check.
FUZZ_SECONDS ?= 600
FUZZ_SRC := fuzz/fuzz_recipe.c builder/recipe/recipe.c builder/recipe/recipe_files.c builder/recipe/recipe_personalization.c \
	builder/recipe/yamltree.c builder/recipe/yamltree_schema.c builder/recipe/version.c builder/util/err.c builder/util/fs.c \
	builder/util/strset.c builder/util/redact.c builder/util/runs.c builder/util/runs_undo.c builder/util/log.c
$(B)/fuzz-recipe: $(FUZZ_SRC) $(wildcard builder/*.h builder/*/*.h)
	@mkdir -p $(B)
	clang $(CPPFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(WARN) -Wno-format-nonliteral \
		$$(pkg-config --cflags yaml-0.1 libcrypto) -o $@ $(FUZZ_SRC) $$(pkg-config --libs yaml-0.1 libcrypto)
fuzz: $(B)/fuzz-recipe
	@mkdir -p $(B)/fuzz-corpus
	$(B)/fuzz-recipe -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-artifact_prefix=$(B)/fuzz- $(FUZZ_FLAGS) $(B)/fuzz-corpus fuzz/corpus tests/recipes

install: all
	install -D -m 0755 $(B)/qvsa $(DESTDIR)$(PREFIX)/bin/qvsa
	mkdir -p $(DESTDIR)$(PREFIX)/share/qvsa
	cp -r templates targets $(DESTDIR)$(PREFIX)/share/qvsa/
	rm -rf $(DESTDIR)$(PREFIX)/share/qvsa/templates/*/src

clean:
	rm -rf $(B) $(AGENT) out

-include $(shell find $(B) -name '*.d' -type f -not -path '$(B)/deb/*' 2>/dev/null)
