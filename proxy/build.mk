# proxy/ — kelp-proxy: Kubernetes Services as nftables rules (libkelp-proxy.a + the CLI).
PROXY_LIB := $(BUILD)/libkelp-proxy.a
PROXY_BIN := $(BUILD)/bin/kelp-proxy
PROXY_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard proxy/*.c))
PROXY_CLI_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard proxy/cli/*.c))
PROXY_LIBS := -lnftnl -lmnl -lnetfilter_conntrack -lyaml -lyajl -lpthread

all: $(PROXY_BIN)

$(BUILD)/obj/proxy/%.o: ALL_CFLAGS += -Iproxy

$(PROXY_LIB): $(PROXY_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(PROXY_BIN): $(PROXY_CLI_OBJS) $(PROXY_LIB) $(LIBKELP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@.tmp $(PROXY_CLI_OBJS) $(PROXY_LIB) $(LIBKELP) $(PROXY_LIBS)
	mv -f $@.tmp $@

$(BUILD)/tests/test_proxy_%: ALL_CFLAGS += -Iproxy
$(BUILD)/tests/test_proxy_%: tests/unit/test_proxy_%.c $(PROXY_LIB) $(LIBKELP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(PROXY_LIB) $(LIBKELP) $(PROXY_LIBS) $(TEST_LIBS)

.PHONY: install-proxy
install: install-proxy
install-proxy: $(PROXY_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROXY_BIN) $(DESTDIR)$(PREFIX)/bin/kelp-proxy
