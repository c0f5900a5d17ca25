# kelp — build, test and install. `make` builds everything into build/; `make test` runs the
# whole suite; `make asan` runs the unit tests under ASan+UBSan, `make tsan` the threaded ones
# under TSan.
PREFIX ?= /usr/local
CNI_BIN_DIR ?= /opt/cni/bin
DESTDIR ?=
BUILD ?= build

CC ?= cc
OPT ?= -O2 -g
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -fno-strict-aliasing \
	-Wno-missing-field-initializers -Wno-format-truncation -Ilib -Iruntime
CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(OPT) $(CFLAGS)

RUNTIME_LIBS := -lseccomp -lcap -lyajl
# lib/kube_manifest.c (Kubernetes manifests) needs libyaml; kelp itself never links it.
UNIT_LIBS := $(RUNTIME_LIBS) -lyaml
# kelp itself is linked statically and stripped: no dynamic loader at every exec (it re-execs
# itself from a sealed memfd, see runtime/sealed.c), a smaller copy, a smaller RSS.
KELP_LINK ?= -static -s
KELP_LIBS ?= -lseccomp -lcap -lyajl_s
TEST_LIBS := -lcmocka

# Missing headers or tools mean missing packages: install them before anything is compiled.
DEP_HEADERS := seccomp.h sys/capability.h yajl/yajl_tree.h cmocka.h libmnl/libmnl.h libnftnl/table.h \
	curl/curl.h archive.h sqlite3.h yaml.h openssl/evp.h
DEP_TOOLS := pkg-config jq busybox nsenter
MISSING := $(strip $(foreach h,$(DEP_HEADERS),$(if $(wildcard /usr/include/$(h) /usr/include/*/$(h)),,$(h))) \
	$(foreach t,$(DEP_TOOLS),$(if $(shell command -v $(t)),,$(t))))
ifneq ($(MISSING),)
$(info missing: $(MISSING); running scripts/deps.sh)
DEPS_OUT := $(shell scripts/deps.sh 1>&2 || echo failed)
ifneq ($(DEPS_OUT),)
$(error scripts/deps.sh failed)
endif
endif

LIB_SRCS := $(wildcard lib/*.c)
RT_SRCS := $(wildcard runtime/*.c)
CLI_SRCS := $(wildcard runtime/cli/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
HELPER_SRCS := $(wildcard tests/helpers/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
RT_OBJS := $(RT_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

LIBKELP := $(BUILD)/libkelp.a
LIBRT := $(BUILD)/libkelp-runtime.a
KELP := $(BUILD)/bin/kelp

.PHONY: all deps test unit asan tsan bench install clean demo
all: $(KELP) $(UNIT_BINS) $(HELPER_BINS)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIBKELP): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(LIBRT): $(RT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(KELP): $(CLI_OBJS) $(LIBRT) $(LIBKELP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(KELP_LINK) -o $@.tmp $(CLI_OBJS) $(LIBRT) $(LIBKELP) $(KELP_LIBS)
	mv -f $@.tmp $@

# Unit tests link both libraries; cmocka's wrapping is not used, so one rule fits all.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBRT) $(LIBKELP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBRT) $(LIBKELP) $(UNIT_LIBS) $(TEST_LIBS)

# Helpers run inside containers whose rootfs has no libc: link them statically.
$(BUILD)/tests/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -static -o $@ $<

test: deps all
	tests/run.sh

unit: all
	tests/run.sh --unit

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, in their own build tree.
asan: deps
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" KELP_LINK= KELP_LIBS="$(RUNTIME_LIBS)" build/asan/bin/kelp $(patsubst $(BUILD)/%,build/asan/%,$(UNIT_BINS))
	BUILD=build/asan tests/run.sh --unit

# The unit tests of code that runs threads, under ThreadSanitizer (a report fails the test: TSan
# exits 66).
TSAN_TESTS := test_proxy_reader
tsan: deps
	$(MAKE) BUILD=build/tsan OPT="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
		$(TSAN_TESTS:%=build/tsan/tests/%)
	BUILD=build/tsan TSAN_OPTIONS=halt_on_error=1 tests/run.sh --unit $(TSAN_TESTS)

bench: deps all
	bench/run.sh

demo: deps all
	scripts/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(KELP) $(DESTDIR)$(PREFIX)/bin/kelp

clean:
	rm -rf build

# Each component beyond the runtime brings its own rules (binaries, libraries it links).
-include $(wildcard */build.mk)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
