/* libFuzzer target: a bundle's config.json through the runtime's parser (spec_parse), then the
 * bundle-independent checks (spec_validate), then spec_free — the path every `kelp create` takes
 * with a file somebody else wrote. */
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kelp_err err = {0};
	struct spec *s = NULL;
	if (spec_parse((const char *)data, size, "config.json", &s, &err) < 0)
		return 0;
	(void)spec_validate(s, &err);
	spec_free(s);
	return 0;
}
