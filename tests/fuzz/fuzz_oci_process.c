/* libFuzzer target: the process.json of `kelp exec --process` (spec_parse_process). */
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kelp_err err = {0};
	struct spec_process p = {0};
	if (spec_parse_process((const char *)data, size, "process.json", &p, &err) < 0)
		return 0;
	spec_process_free(&p);
	return 0;
}
