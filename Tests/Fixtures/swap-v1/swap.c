#define FIXTURE_ID "fixture-swap"
#define FIXTURE_VERSION "1.0.0"
#define FIXTURE_GENERATION 1
/* Built as an ABI 1.0 plugin (its info ends before the 1.1 `tool` field): a newer host loads it. */
#define FIXTURE_ABI_MINOR 0
#define FIXTURE_INFO_SIZE offsetof(orion_plugin_info, tool)
#include "../fixture_plugin.h"
