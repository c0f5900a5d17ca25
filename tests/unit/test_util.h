/* What every cmocka test file here shares: failure messages and skips in the form tests/run.sh
 * shows (print_message goes to the TAP stream; cmocka's fail_msg goes to stderr). */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* Fail with a one-line message shown under the failure. */
#define failf(...)                                                                                 \
	do {                                                                                       \
		print_message("# ");                                                               \
		print_message(__VA_ARGS__);                                                        \
		print_message("\n");                                                               \
		_fail(__FILE__, __LINE__);                                                         \
	} while (0)

/* Skip with the reason tests/run.sh requires. */
#define skip_because(why)                                                                          \
	do {                                                                                       \
		print_message("# skip: %s\n", why);                                                \
		skip();                                                                            \
	} while (0)
