# cri/: the image store library (cri/image, libkelp-image.a) and kelpd's command line.
IMG_SRCS := $(wildcard cri/image/*.c)
IMG_OBJS := $(IMG_SRCS:%.c=$(BUILD)/obj/%.o)
KELPD_SRCS := $(wildcard cri/kelpd/*.c)
KELPD_OBJS := $(KELPD_SRCS:%.c=$(BUILD)/obj/%.o)
LIBIMG := $(BUILD)/libkelp-image.a
KELPD := $(BUILD)/bin/kelpd
IMG_LIBS := -lcurl -larchive -lcrypto -lsqlite3 -lyaml -lyajl -lpthread

$(KELPD_OBJS): ALL_CFLAGS += -Icri/image

$(LIBIMG): $(IMG_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(KELPD): $(KELPD_OBJS) $(LIBIMG) $(LIBKELP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(KELPD_OBJS) $(LIBIMG) $(LIBKELP) $(IMG_LIBS)

# The image unit tests need the image library and its system libraries.
$(BUILD)/tests/test_image_%: tests/unit/test_image_%.c $(LIBIMG) $(LIBKELP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icri/image $(LDFLAGS) -o $@ $< $(LIBIMG) $(LIBKELP) $(IMG_LIBS) $(TEST_LIBS)

all: $(KELPD)

.PHONY: install-kelpd
install-kelpd: $(KELPD)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/kelp
	install -m 0755 $(KELPD) $(DESTDIR)$(PREFIX)/bin/kelpd
	test -e $(DESTDIR)/etc/kelp/kelpd.yaml || install -m 0644 config/kelpd.yaml $(DESTDIR)/etc/kelp/kelpd.yaml
install: install-kelpd
