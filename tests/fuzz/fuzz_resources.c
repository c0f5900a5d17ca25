/* libFuzzer target: the resources JSON of `kelp update --resources` (spec_parse_resources). */
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kelp_err err = {0};
	struct spec_resources r = {0};
	if (spec_parse_resources((const char *)data, size, "resources.json", &r, &err) < 0)
		return 0;
	spec_resources_free(&r);
	return 0;
}
