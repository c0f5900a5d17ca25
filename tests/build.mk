# tests/ — libFuzzer targets (tests/fuzz/). Built with clang into $(BUILD)/fuzz/, from their own
# objects of the project sources (compiled with clang and the fuzz/sanitizer flags; the gcc
# objects under $(BUILD)/obj are never reused).
#   make fuzz                         build every target
#   make fuzz-run T=<target> S=<sec>  run one on its corpus; new inputs go to $(BUILD)/fuzz/new/
#   make fuzz-smoke [S=<sec>]         every target S seconds (default 20), fails on any report
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_OBJ := $(FUZZ_DIR)/obj
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = $(CFLAGS_BASE) -Wno-unknown-warning-option -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
	-Icni-plugins/common -Icni-plugins -Icri/image -Iproxy
FUZZ_LDFLAGS = $(FUZZ_SAN) -fsanitize=fuzzer

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

FUZZ_LIBKELP := $(FUZZ_DIR)/libkelp.a
FUZZ_LIBRT := $(FUZZ_DIR)/libkelp-runtime.a
FUZZ_LIBCNI := $(FUZZ_DIR)/libkelp-cni.a
FUZZ_LIBIMG := $(FUZZ_DIR)/libkelp-image.a
FUZZ_LIBPROXY := $(FUZZ_DIR)/libkelp-proxy.a
FUZZ_CNI_SRCS := $(wildcard cni-plugins/common/*.c) cni-plugins/host-local/config.c \
	cni-plugins/bridge/config.c cni-plugins/portmap/config.c cni-plugins/vxlan/overlay.c

$(FUZZ_OBJ)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_LIBKELP): $(LIB_SRCS:%.c=$(FUZZ_OBJ)/%.o)
$(FUZZ_LIBRT): $(RT_SRCS:%.c=$(FUZZ_OBJ)/%.o)
$(FUZZ_LIBCNI): $(FUZZ_CNI_SRCS:%.c=$(FUZZ_OBJ)/%.o)
$(FUZZ_LIBIMG): $(patsubst %.c,$(FUZZ_OBJ)/%.o,$(wildcard cri/image/*.c))
$(FUZZ_LIBPROXY): $(patsubst %.c,$(FUZZ_OBJ)/%.o,$(wildcard proxy/*.c))
$(FUZZ_LIBKELP) $(FUZZ_LIBRT) $(FUZZ_LIBCNI) $(FUZZ_LIBIMG) $(FUZZ_LIBPROXY):
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

# Which libraries each family of targets links (archives: only the members used are pulled in).
FUZZ_LINK_fuzz_oci := $(FUZZ_LIBRT) $(FUZZ_LIBKELP) -lseccomp -lcap -lyajl
FUZZ_LINK_fuzz_resources := $(FUZZ_LINK_fuzz_oci)
FUZZ_LINK_fuzz_resolve := $(FUZZ_LIBKELP) -lyajl
FUZZ_LINK_fuzz_cni := $(FUZZ_LIBCNI) $(FUZZ_LIBKELP) -lnftnl -lmnl -lyajl
FUZZ_LINK_fuzz_image := $(FUZZ_LIBIMG) $(FUZZ_LIBKELP) -lcurl -larchive -lcrypto -lsqlite3 -lyaml -lyajl -lpthread
FUZZ_LINK_fuzz_kube := $(FUZZ_LIBKELP) -lyaml -lyajl
FUZZ_LINK_fuzz_proxy := $(FUZZ_LIBPROXY) $(FUZZ_LIBKELP) -lnftnl -lmnl -lnetfilter_conntrack -lyaml -lyajl -lpthread
fuzz_family = $(word 1,$(subst _, ,$(1)))_$(word 2,$(subst _, ,$(1)))
# The archives a target links (a function: a literal % in a pattern rule's prerequisites is the stem).
fuzz_archives = $(filter %.a,$(FUZZ_LINK_$(call fuzz_family,$(1))))

.PRECIOUS: $(FUZZ_OBJ)/%.o
.SECONDEXPANSION:
$(FUZZ_DIR)/fuzz_%: $(FUZZ_OBJ)/tests/fuzz/fuzz_%.o $$(call fuzz_archives,fuzz_$$*)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_LINK_$(call fuzz_family,fuzz_$*))

.PHONY: fuzz fuzz-run fuzz-smoke
fuzz: $(FUZZ_BINS)

S ?= 20
FUZZ_OPTS := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
# the CNI protocol prints each error to stderr; libFuzzer keeps its own and the sanitizers' output
FUZZ_OPTS_fuzz_cni_conf := -close_fd_mask=3
# New corpus entries go to a scratch directory (the first corpus dir libFuzzer is given);
# the seed corpus in the repo is only read. Crash artifacts land in $(FUZZ_DIR)/artifacts/.
fuzz-run: fuzz
	@test -n "$(T)" || { echo "usage: make fuzz-run T=<target> S=<seconds>; targets: $(FUZZ_TARGETS)" >&2; exit 2; }
	@test -x $(FUZZ_DIR)/$(T) || { echo "fuzz-run: no target $(T); targets: $(FUZZ_TARGETS)" >&2; exit 2; }
	@mkdir -p $(FUZZ_DIR)/new/$(T) $(FUZZ_DIR)/artifacts
	$(FUZZ_DIR)/$(T) $(FUZZ_OPTS) $(FUZZ_OPTS_$(T)) -max_total_time=$(S) -artifact_prefix=$(FUZZ_DIR)/artifacts/$(T)- \
		$(if $(wildcard tests/fuzz/$(T).dict),-dict=tests/fuzz/$(T).dict) \
		$(FUZZ_DIR)/new/$(T) tests/fuzz/corpus/$(T)

fuzz-smoke: fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz-smoke: $$t ($(S)s)"; \
		$(MAKE) -s --no-print-directory fuzz-run T=$$t S=$(S) >$(FUZZ_DIR)/$$t.smoke.log 2>&1 || \
			{ tail -n 60 $(FUZZ_DIR)/$$t.smoke.log >&2; echo "fuzz-smoke: $$t FAILED (log $(FUZZ_DIR)/$$t.smoke.log)" >&2; exit 1; }; \
		grep -E '^(stat::number_of_executed_units|stat::new_units_added)' $(FUZZ_DIR)/$$t.smoke.log | tr '\n' ' '; echo; \
	done

-include $(shell find $(FUZZ_OBJ) -name '*.d' 2>/dev/null)

# Line coverage of each target's parser over its seed corpus plus what fuzz-run found: the
# target rebuilt with clang's source-based coverage (own tree), run once over the inputs.
FUZZ_COV_SRCS_fuzz_oci_config := runtime/spec.c lib/json.c
FUZZ_COV_SRCS_fuzz_oci_process := runtime/spec.c lib/json.c
FUZZ_COV_SRCS_fuzz_resources := runtime/spec.c lib/json.c
FUZZ_COV_SRCS_fuzz_resolve_in_root := lib/fs.c
FUZZ_COV_SRCS_fuzz_cni_conf := cni-plugins/common/cni.c cni-plugins/common/result.c cni-plugins/common/ip.c \
	cni-plugins/host-local/config.c cni-plugins/bridge/config.c cni-plugins/portmap/config.c cni-plugins/vxlan/overlay.c
FUZZ_COV_SRCS_fuzz_cni_peers := cni-plugins/vxlan/overlay.c
FUZZ_COV_SRCS_fuzz_image_manifest := cri/image/manifest.c
FUZZ_COV_SRCS_fuzz_image_layer := cri/image/extract.c cri/image/unpack.c
FUZZ_COV_SRCS_fuzz_kube_manifest := lib/kube_manifest.c lib/kube_manifest_fast.c
FUZZ_COV_SRCS_fuzz_proxy_model := proxy/model.c proxy/elems.c
FUZZ_COV := $(BUILD)/fuzzcov
.PHONY: fuzz-cov
fuzz-cov:
	@test -n "$(T)" || { echo "usage: make fuzz-cov T=<target>; targets: $(FUZZ_TARGETS)" >&2; exit 2; }
	$(MAKE) -s BUILD=$(FUZZ_COV) FUZZ_SAN="-fprofile-instr-generate -fcoverage-mapping" $(FUZZ_COV)/fuzz/$(T)
	rm -f $(FUZZ_COV)/$(T).profraw
	@mkdir -p $(FUZZ_DIR)/new/$(T)
	LLVM_PROFILE_FILE=$(FUZZ_COV)/$(T).profraw $(FUZZ_COV)/fuzz/$(T) $(FUZZ_OPTS_$(T)) -runs=0 \
		$(FUZZ_DIR)/new/$(T) tests/fuzz/corpus/$(T) >$(FUZZ_COV)/$(T).log 2>&1
	llvm-profdata merge -sparse $(FUZZ_COV)/$(T).profraw -o $(FUZZ_COV)/$(T).profdata
	llvm-cov report $(FUZZ_COV)/fuzz/$(T) -instr-profile=$(FUZZ_COV)/$(T).profdata $(FUZZ_COV_SRCS_$(T))

# The whole suite (unit and integration) once with every kelp binary under ASan+UBSan, in
# build/asan (the objects the top-level `asan` target builds, same flags). kelp is dynamic there
# (ASan cannot be static). Binaries linked -static (the helpers that run inside containers, the
# bench helpers) cannot carry ASan: they are built first without it, so the sanitized `all`
# finds them up to date (a new -static binary of `all` belongs in ASAN_STATIC_BINS). Sanitizer reports go to files (ASAN_LOG_DIR), not to the stderr the
# tests read; any report fails the target, as does any failed test.
ASAN_BUILD := build/asan
ASAN_OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_STATIC_BINS = $(patsubst $(BUILD)/%,$(ASAN_BUILD)/%,$(HELPER_BINS) $(BENCH_PROXY_BINS))
ASAN_LOG_DIR := $(CURDIR)/$(ASAN_BUILD)/asan-logs
# detect_leaks=1: LeakSanitizer at every sanitized process's exit. abort_on_error=1 and
# handle_segv=0: a container init whose seccomp filter denies everything (14-process.sh) cannot
# exec, report or exit_group; the static kelp then dies on glibc's final hlt (SIGSEGV), but the
# sanitizer's exit path calls Die() again when exit_group fails and spins forever in AsanDie. With
# these options it aborts, and the SIGSEGV of abort's hlt kills it as it kills the static kelp.
# The cost: a segfault kills the process (the test fails) without ASan's stack trace.
ASAN_TEST_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:handle_segv=0:log_path=$(ASAN_LOG_DIR)/asan:log_exe_name=1 \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_LOG_DIR)/ubsan:log_exe_name=1
.PHONY: asan-test asan-build
asan-build: deps
	$(MAKE) -s BUILD=$(ASAN_BUILD) OPT="-O2 -g" LDFLAGS= $(ASAN_STATIC_BINS)
	$(MAKE) -s BUILD=$(ASAN_BUILD) OPT="$(ASAN_OPT)" LDFLAGS="-fsanitize=address,undefined" KELP_LINK= \
		KELP_LIBS="$(RUNTIME_LIBS)" all
asan-test: asan-build
	@rm -rf $(ASAN_LOG_DIR); mkdir -p $(ASAN_LOG_DIR)
	@start=$$(date +%s); rc=0; \
	$(ASAN_TEST_ENV) BUILD=$(ASAN_BUILD) tests/run.sh $(T) || rc=$$?; \
	echo "asan-test: $$(( $$(date +%s) - start )) s"; \
	if [ -n "$$(ls -A $(ASAN_LOG_DIR))" ]; then \
		echo "asan-test: sanitizer reports in $(ASAN_LOG_DIR):" >&2; \
		for f in $(ASAN_LOG_DIR)/*; do echo "== $$f" >&2; head -n 40 "$$f" >&2; done; rc=1; \
	fi; exit $$rc

# The image store and the CNI plugins of the ASan build doing many rounds under LeakSanitizer
# (tests/asan/long-lsan.sh: a many-layer import and pull, ADD/CHECK/DEL loops). LAYERS=, LOOPS=.
.PHONY: asan-long
asan-long: asan-build
	BUILD=$(ASAN_BUILD) $(if $(LAYERS),LAYERS=$(LAYERS)) $(if $(LOOPS),LOOPS=$(LOOPS)) tests/asan/long-lsan.sh
