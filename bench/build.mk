# bench/ — benchmarks. bench/proxy.sh's helpers (bench/proxy/*.c: the connection-rate probe and
# the timed-change helper) are static, like the other helpers that run inside namespaces.
BENCH_PROXY_BINS := $(BUILD)/bench/connrate $(BUILD)/bench/swapwait

all: $(BENCH_PROXY_BINS)

$(BUILD)/bench/%: bench/proxy/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -static -o $@ $<

.PHONY: bench-proxy
bench-proxy: deps all $(BENCH_PROXY_BINS)
	bench/proxy.sh
