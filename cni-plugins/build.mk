# cni-plugins/ — kelp's CNI plugins: one folder per plugin, common/ for the exec protocol.
CNI_PLUGINS := kelp-loopback kelp-host-local kelp-bridge kelp-portmap kelp-vxlan
CNI_BINS := $(CNI_PLUGINS:%=$(BUILD)/cni/%)
# yajl and libnftnl linked statically: fewer libraries for the loader on every exec (Debian
# ships no static libmnl)
CNI_LIBS := -Wl,-Bstatic -lnftnl -lyajl_s -Wl,-Bdynamic -lmnl
LIBKELP_CNI := $(BUILD)/libkelp-cni.a
CNI_COMMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cni-plugins/common/*.c))
CNI_CFLAGS := -Icni-plugins/common

all: $(CNI_BINS)

$(BUILD)/obj/cni-plugins/%.o: ALL_CFLAGS += $(CNI_CFLAGS)
$(BUILD)/tests/test_cni_%: ALL_CFLAGS += $(CNI_CFLAGS) -Icni-plugins

$(LIBKELP_CNI): $(CNI_COMMON_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

# kelp-NAME is built from every .c file of cni-plugins/NAME/.
define cni_plugin_rule
$(BUILD)/cni/kelp-$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cni-plugins/$(1)/*.c)) $(LIBKELP_CNI) $(LIBKELP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBKELP_CNI) $(LIBKELP) $(CNI_LIBS)
endef
$(foreach p,$(CNI_PLUGINS:kelp-%=%),$(eval $(call cni_plugin_rule,$(p))))

# kelp-bridge runs kelp-host-local in process (see kelp_host_local_plugin in common/cni.h).
HOST_LOCAL_LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out cni-plugins/host-local/main.c,$(wildcard cni-plugins/host-local/*.c)))
$(BUILD)/cni/kelp-bridge: $(HOST_LOCAL_LIB_OBJS)

# Unit tests get the plugin objects except the ones holding main().
CNI_TEST_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out cni-plugins/loopback/loopback.c \
	cni-plugins/host-local/main.c cni-plugins/bridge/bridge.c cni-plugins/portmap/portmap.c cni-plugins/vxlan/vxlan.c,$(foreach p,$(CNI_PLUGINS:kelp-%=%),$(wildcard cni-plugins/$(p)/*.c))))
$(BUILD)/tests/test_cni_%: tests/unit/test_cni_%.c $(CNI_TEST_OBJS) $(LIBKELP_CNI) $(LIBKELP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(CNI_TEST_OBJS) $(LIBKELP_CNI) $(LIBKELP) $(CNI_LIBS) $(TEST_LIBS)

.PHONY: install-cni
install: install-cni
install-cni: $(CNI_BINS)
	install -d $(DESTDIR)$(CNI_BIN_DIR)
	install -m 0755 $(CNI_BINS) $(DESTDIR)$(CNI_BIN_DIR)/
